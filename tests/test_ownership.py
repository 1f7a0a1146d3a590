"""Ownership that cannot be confused: a re-created account never gets an old account's data,
and two installs with one HUB_NAME on one engine never touch each other's objects.

Real hubs on the real Docker engine (see docs/decisions/ownership.md).
"""

from __future__ import annotations

import time
from datetime import datetime

import docker
import pytest

from devtools.hubprocess import HubProcess
from mlhub.core.names import user_network_name, workspace_name, workspace_volume_name
from mlhub.hub.install import claim_name
from tests.support.engine_objects import cleanup, exists
from tests.support.images import WORKSPACE_IMAGE

SECRET = "old-owner-secret"


def write_file(client: docker.DockerClient, hub_name: str, user: str, name: str, text: str) -> None:
    container = client.containers.get(workspace_name(hub_name, user, ""))
    # as the workspace's user: with no-new-privileges an exec'd root has no capabilities
    result = container.exec_run(["sh", "-c", f"echo {text} > /workspace/{name}"])
    assert result.exit_code == 0, result.output


def workspace_files(client: docker.DockerClient, hub_name: str, user: str) -> str:
    container = client.containers.get(workspace_name(hub_name, user, ""))
    result = container.exec_run(["sh", "-c", "ls -A /workspace; cat /workspace/*.txt 2>/dev/null"])
    return result.output.decode(errors="replace")


def recreate(hub: HubProcess, user: str) -> str:
    """Delete the account (its default server stops first) and create one with the same name."""
    assert hub.api("DELETE", f"/users/{user}").status_code == 204
    hub._user_tokens.pop(user, None)
    return hub.ensure_user(user)


def volume_with_file(client: docker.DockerClient, name: str, labels: dict[str, str], text: str) -> None:
    """A volume made by hand (as an older MLHub made it), holding old.txt."""
    client.volumes.create(name, labels=labels)
    client.containers.run(
        WORKSPACE_IMAGE,
        ["sh", "-c", f"echo {text} > /v/old.txt"],
        user="root",
        remove=True,
        volumes={name: {"bind": "/v", "mode": "rw"}},
        labels={"mlhub.origin": labels["mlhub.origin"]},
    )


@pytest.mark.parametrize("policy", ["remove", "keep"])
def test_a_recreated_account_never_sees_the_old_accounts_workspace(hub_factory, docker_client, policy):
    hub = hub_factory(env={"MLHUB_DELETED_USER_VOLUMES": policy})
    token = hub.ensure_user("reuse")
    hub.spawn("reuse", "", {}, token=token)
    write_file(docker_client, hub.hub_name, "reuse", "old.txt", SECRET)
    old_volume = workspace_volume_name(hub.hub_name, "reuse", "")
    old_labels = docker_client.volumes.get(old_volume).attrs["Labels"]

    token = recreate(hub, "reuse")
    old_kept = exists(docker_client, "volume", old_volume)
    hub.spawn("reuse", "", {}, token=token)
    seen = workspace_files(docker_client, hub.hub_name, "reuse")
    assert SECRET not in seen and "old.txt" not in seen, seen
    if policy == "remove":
        assert not old_kept, "the deleted account's volume did not go with it"
    else:
        assert docker_client.volumes.get(old_volume).attrs["Labels"] == old_labels
    assert old_labels.get("mlhub.user_created"), old_labels
    container = docker_client.containers.get(workspace_name(hub.hub_name, "reuse", ""))
    (mount,) = [m for m in container.attrs["Mounts"] if m["Destination"] == "/workspace"]
    new_labels = docker_client.volumes.get(mount["Name"]).attrs["Labels"]
    assert new_labels["mlhub.user_created"] != old_labels["mlhub.user_created"]
    if policy == "keep":
        assert mount["Name"] != old_volume
        # the kept volume still holds the old data, and the cleanup's users run keeps it
        admin = hub.ensure_user("oadmin", admin=True)
        report = cleanup(hub, "users", admin).json()
        assert report["ok"], report
        assert old_volume not in {a["name"] for a in report["removed"]}
        assert exists(docker_client, "volume", old_volume)
    hub.stop_server("reuse")


def test_a_volume_of_an_older_account_made_before_account_labels_is_not_adopted(hub, docker_client):
    """Volumes made by a version without ``mlhub.user_created``: the account's own ones (made
    after the account) keep working; one made before the account belonged to an earlier
    account of that name and is not mounted."""
    base = {"mlhub.origin": hub.hub_name, "mlhub.server_name": ""}
    # an earlier account "prior" left a volume; then a new account "prior" is created
    volume_with_file(
        docker_client,
        workspace_volume_name(hub.hub_name, "prior", ""),
        {**base, "mlhub.user": "prior"},
        SECRET,
    )
    # times within a second count as one account (databases round); real successors come later
    time.sleep(3)
    prior = hub.ensure_user("prior")
    hub.spawn("prior", "", {}, token=prior)
    assert SECRET not in workspace_files(docker_client, hub.hub_name, "prior")
    hub.stop_server("prior")
    # an account's own volume from before the upgrade is used as before
    legacy = hub.ensure_user("legacy")
    volume_with_file(
        docker_client,
        workspace_volume_name(hub.hub_name, "legacy", ""),
        {**base, "mlhub.user": "legacy"},
        "mine",
    )
    hub.spawn("legacy", "", {}, token=legacy)
    assert "mine" in workspace_files(docker_client, hub.hub_name, "legacy")
    hub.stop_server("legacy")


def test_a_second_hub_with_the_same_name_is_refused_and_touches_nothing(hub_factory, docker_client, tmp_path):
    first = hub_factory()
    token = first.ensure_user("owner")
    first.spawn("owner", "", {}, token=token)
    before = {
        "containers": {
            c.id
            for c in docker_client.containers.list(
                all=True, filters={"label": f"mlhub.origin={first.hub_name}"}
            )
        },
        "volumes": {
            v.name for v in docker_client.volumes.list(filters={"label": f"mlhub.origin={first.hub_name}"})
        },
        "networks": {
            n.id for n in docker_client.networks.list(filters={"label": f"mlhub.origin={first.hub_name}"})
        },
    }
    second = HubProcess(tmp_path, first.hub_name)
    try:
        with pytest.raises(RuntimeError) as info:
            second.start()
    finally:
        second.stop()
    assert "hub exited with 2" in str(info.value), info.value
    message = second.log_path.read_text()
    assert (
        f"HUB_NAME {first.hub_name!r} is already used on this Docker engine by another MLHub install"
        in message
    )
    assert "choose another HUB_NAME" in message
    after = {
        "containers": {
            c.id
            for c in docker_client.containers.list(
                all=True, filters={"label": f"mlhub.origin={first.hub_name}"}
            )
        },
        "volumes": {
            v.name for v in docker_client.volumes.list(filters={"label": f"mlhub.origin={first.hub_name}"})
        },
        "networks": {
            n.id for n in docker_client.networks.list(filters={"label": f"mlhub.origin={first.hub_name}"})
        },
    }
    assert after == before
    assert first.server("owner")["ready"]
    # the same install restarted (same data directory) is not refused, and keeps its workspace
    first.restart()
    assert first.server("owner")["ready"]
    first.stop_server("owner")


def test_cleanup_never_removes_objects_of_another_install_with_the_same_name(hub_factory, docker_client):
    hub = hub_factory(env={"CLEANUP_INTERVAL_SECONDS": "-1"})
    admin = hub.ensure_user("iadmin", admin=True)

    def make(user: str, install: str | None) -> None:
        labels = {"mlhub.origin": hub.hub_name, "mlhub.user": user, "mlhub.server_name": ""}
        if install:
            labels["mlhub.install"] = install
        docker_client.networks.create(user_network_name(hub.hub_name, user), labels=labels)
        docker_client.volumes.create(workspace_volume_name(hub.hub_name, user, ""), labels=labels)

    # objects of users this hub does not know: another install's, and ones made before install ids
    make("theirs", "0123456789abcdef")
    make("older", None)
    report = cleanup(hub, "users", admin).json()
    assert report["ok"], report
    for user in ("theirs", "older"):
        assert exists(docker_client, "volume", workspace_volume_name(hub.hub_name, user, "")), report[
            "removed"
        ]
        assert exists(docker_client, "network", user_network_name(hub.hub_name, user)), report["removed"]
    assert report["removed"] == []
    kept = {a["name"]: a["reason"] for a in report["kept"]}
    assert "no mlhub.install label" in kept[workspace_volume_name(hub.hub_name, "older", "")]
    assert workspace_volume_name(hub.hub_name, "theirs", "") not in kept  # not even considered
    # this install's own leftovers still go
    make("mine", hub.install_id())
    report = cleanup(hub, "users", admin).json()
    assert {a["name"] for a in report["removed"]} == {
        workspace_volume_name(hub.hub_name, "mine", ""),
        user_network_name(hub.hub_name, "mine"),
    }
    # a volume of an earlier account named like a current user goes; the current account's stays
    created = int(
        datetime.fromisoformat(
            hub.api("GET", "/users/iadmin").json()["created"].replace("Z", "+00:00")
        ).timestamp()
    )
    labels = {"mlhub.origin": hub.hub_name, "mlhub.user": "iadmin", "mlhub.install": hub.install_id()}
    earlier = docker_client.volumes.create(
        f"{hub.hub_name}-iadmin--old-workspace", labels={**labels, "mlhub.user_created": "1000"}
    )
    current = docker_client.volumes.create(
        f"{hub.hub_name}-iadmin--new-workspace", labels={**labels, "mlhub.user_created": str(created)}
    )
    report = cleanup(hub, "users", admin).json()
    assert {a["name"]: a["reason"] for a in report["removed"]} == {
        earlier.name: "its account was deleted (a newer account has this user name)"
    }
    assert exists(docker_client, "volume", current.name)


def test_an_upgrade_without_install_ids_starts_and_a_lost_install_id_is_refused(hub_factory, docker_client):
    hub = hub_factory()
    token = hub.ensure_user("up")
    hub.stop()
    # what a version without install ids leaves: no claim, no id file, objects without mlhub.install
    docker_client.volumes.get(claim_name(hub.hub_name)).remove()
    id_file = hub.workdir / "data" / "install-id"
    first_id = id_file.read_text().strip()
    id_file.unlink()
    labels = {"mlhub.origin": hub.hub_name, "mlhub.user": "up", "mlhub.server_name": ""}
    volume_with_file(docker_client, workspace_volume_name(hub.hub_name, "up", ""), labels, "work-of-up")
    hub.start()
    assert hub.install_id() != first_id
    hub.spawn("up", "", {}, token=token)
    assert "work-of-up" in workspace_files(docker_client, hub.hub_name, "up")  # adopted
    hub.stop_server("up")
    # its objects now carry the new id: the same hub with its data directory lost is refused
    hub.stop()
    second_id = hub.install_id()
    id_file.unlink()
    with pytest.raises(RuntimeError, match="hub exited with 2") as info:
        hub.start()
    assert f"HUB_NAME {hub.hub_name!r} is already used on this Docker engine" in str(info.value)
    # ... until the admin gives it back its id, as the message says
    id_file.write_text(second_id + "\n")
    hub.start()
    hub.spawn("up", "", {}, token=token)
    assert "work-of-up" in workspace_files(docker_client, hub.hub_name, "up")
    hub.stop_server("up")
