"""The cleanup service, started by a real hub, removing real Docker objects."""

from __future__ import annotations

import re
import time

import docker
import pytest
import requests

from mlhub.core.names import user_network_name, workspace_volume_name
from tests.support.engine_objects import cleanup, containers_of, exists
from tests.support.images import WORKSPACE_IMAGE
from tests.support.web import login

ADMIN_PASSWORD = "cleanup-Admin-pw"


def leftovers(client: docker.DockerClient, origin: str, user: str, install: str = "") -> dict[str, str]:
    """Objects labelled as a workspace of *user* on hub *origin* (made by the install
    *install*), made straight on the engine (what a crashed hub, or a hub whose DB lost the
    user, leaves behind)."""
    owner = {"mlhub.origin": origin, "mlhub.user": user, **({"mlhub.install": install} if install else {})}
    labels = {**owner, "mlhub.server_name": ""}
    net = client.networks.create(f"{origin}-{user}", labels=owner)
    volume = client.volumes.create(f"{origin}-{user}-workspace", labels=labels)
    container = client.containers.run(
        WORKSPACE_IMAGE,
        ["sleep", "600"],
        name=f"{origin}-{user}",
        labels=labels,
        network=net.name,
        volumes={volume.name: {"bind": "/workspace", "mode": "rw"}},
        detach=True,
    )
    return {"network": net.name, "volume": volume.name, "container": container.name}


@pytest.fixture(scope="module")
def chub(hub_factory):
    return hub_factory(
        env={
            "CLEANUP_INTERVAL_SECONDS": "-1",
            "MLHUB_CULL_IDLE_SECONDS": "3600",
            "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
    )


def test_hub_runs_its_services(chub):
    services = chub.api("GET", "/services").json()
    assert services["cleanup-service"]["pid"] and services["cleanup-service"]["url"]
    culler = services["idle-culler"]
    assert culler["pid"] and "--timeout=3600" in culler["command"] and "--cull-every=300" in culler["command"]


def test_only_admins_get_in(chub):
    admin = chub.ensure_user("cadmin", admin=True)
    user = chub.ensure_user("cuser")
    assert cleanup(chub, "status", admin).status_code == 200
    for path in ("status", "users", "expired"):
        assert cleanup(chub, path).status_code == 403
        assert cleanup(chub, path, user).status_code == 403
    # an admin's token without access to the service is refused too
    narrow = chub.api("POST", "/users/cadmin/tokens", json={"scopes": ["read:users"]}).json()["token"]
    assert cleanup(chub, "users", narrow).status_code == 403
    # a browser without a session is sent to log in
    browser = requests.get(
        f"{chub.url}/services/cleanup-service/status",
        headers={"Accept": "text/html"},
        allow_redirects=False,
        timeout=30,
    )
    assert browser.status_code == 302


def test_users_endpoint_removes_objects_of_deleted_users_only(chub, docker_client):
    admin = chub.ensure_user("cadmin", admin=True)
    stay = chub.ensure_user("stay")
    gone = chub.ensure_user("gone")
    chub.spawn("stay", "", {}, token=stay)
    chub.spawn("gone", "", {}, token=gone)
    chub.spawn("gone", "second", {}, token=gone)
    # JupyterHub 6.1 refuses to delete a user with a running *named* server (500), so stop
    # that first; it stops the default server itself. The user's volumes remain.
    chub.stop_server("gone", "second")
    assert chub.api("DELETE", "/users/gone").status_code == 204
    ghost = leftovers(docker_client, chub.hub_name, "ghost", chub.install_id())  # a user the hub never knew
    other = leftovers(docker_client, chub.hub_name[:-1] + "x", "ghost")  # another hub's
    gone_volumes = [workspace_volume_name(chub.hub_name, "gone", s) for s in ("", "second")]
    # the account's volumes went with it (MLHUB_DELETED_USER_VOLUMES=remove, the default)
    assert not any(exists(docker_client, "volume", v) for v in gone_volumes)

    dry = cleanup(chub, "users", admin, dry_run=1)
    assert dry.status_code == 200, dry.text
    dry = dry.json()
    assert dry["dry_run"] is True and dry["ok"]
    planned = {(a["kind"], a["name"]) for a in dry["removed"]}
    assert {
        ("container", ghost["container"]),
        ("volume", ghost["volume"]),
        ("network", ghost["network"]),
    } <= planned
    assert all(exists(docker_client, kind, name) for kind, name in ghost.items())  # nothing removed

    report = cleanup(chub, "users", admin).json()
    assert report["ok"] and report["dry_run"] is False
    assert {(a["kind"], a["name"]) for a in report["removed"]} == planned
    assert not any(exists(docker_client, kind, name) for kind, name in ghost.items())
    assert not any(exists(docker_client, "volume", v) for v in gone_volumes)
    # the remaining user's workspace, volume and network stay, and so does the other hub's
    assert containers_of(docker_client, chub.hub_name, "stay", "", all=False)
    assert exists(docker_client, "volume", workspace_volume_name(chub.hub_name, "stay", ""))
    assert exists(docker_client, "network", user_network_name(chub.hub_name, "stay"))
    assert all(exists(docker_client, kind, name) for kind, name in other.items())
    kept = {a["name"]: a["reason"] for a in report["kept"]}
    assert kept[workspace_volume_name(chub.hub_name, "stay", "")] == "user exists"

    status = cleanup(chub, "status", admin).json()
    assert status["last_runs"]["users"]["removed"] == report["removed"]
    docker_client.containers.get(other["container"]).remove(force=True)
    docker_client.volumes.get(other["volume"]).remove()
    docker_client.networks.get(other["network"]).remove()
    chub.stop_server("stay")


def test_an_orphaned_network_with_a_bystander_attached_is_removed_and_the_bystander_lives(
    chub, docker_client
):
    """The hub's own container stays attached to users' networks (to reach the workspaces): the
    cleanup disconnects such a container, removes the network, and leaves the container running."""
    admin = chub.ensure_user("cadmin", admin=True)
    owner = {"mlhub.origin": chub.hub_name, "mlhub.user": "netghost", "mlhub.install": chub.install_id()}
    net = docker_client.networks.create(f"{chub.hub_name}-netghost", labels=owner)
    bystander = docker_client.containers.run(
        WORKSPACE_IMAGE, ["sleep", "600"], name=f"{chub.hub_name}-bystander", detach=True
    )
    try:
        net.connect(bystander)
        report = cleanup(chub, "users", admin).json()
        assert report["ok"], report["errors"]
        assert ("network", net.name) in {(a["kind"], a["name"]) for a in report["removed"]}
        assert not exists(docker_client, "network", net.name)
        bystander.reload()
        assert bystander.status == "running"
        assert net.name not in bystander.attrs["NetworkSettings"]["Networks"]
    finally:
        bystander.remove(force=True)


def test_users_endpoint_removes_a_container_left_running_for_a_stopped_server(chub, docker_client):
    """What a start interrupted between the engine's answer and the hub's leaves: the hub
    says the server is stopped, yet its container runs. Once older than the safety margin
    (30 s) it goes; the user's running workspace and volumes stay."""
    admin = chub.ensure_user("cadmin", admin=True)
    gina = chub.ensure_user("gina")
    chub.spawn("gina", "", {}, token=gina)
    chub.spawn("gina", "ghost", {}, token=gina)
    chub.stop_server("gina", "ghost")  # the named server's row stays, stopped
    deadline = time.monotonic() + 30  # the engine removes the stopped container shortly after
    while exists(docker_client, "container", f"{chub.hub_name}-gina--ghost") and time.monotonic() < deadline:
        time.sleep(0.2)
    labels = {
        "mlhub.origin": chub.hub_name,
        "mlhub.user": "gina",
        "mlhub.server_name": "ghost",
        "mlhub.install": chub.install_id(),
    }
    stale = docker_client.containers.run(
        WORKSPACE_IMAGE, ["sleep", "600"], name=f"{chub.hub_name}-gina--ghost", labels=labels, detach=True
    )
    young = cleanup(chub, "users", admin, dry_run=1).json()
    assert stale.name not in {a["name"] for a in young["removed"]}, (
        "a container younger than the margin was taken"
    )
    time.sleep(31)
    report = cleanup(chub, "users", admin).json()
    assert report["ok"], report
    removed = {a["name"]: a["reason"] for a in report["removed"]}
    assert removed == {
        stale.name: "runs while its server is stopped in the hub (left by an interrupted start)"
    }
    assert not exists(docker_client, "container", stale.name)
    assert containers_of(docker_client, chub.hub_name, "gina", "", all=False), (
        "the running workspace was removed"
    )
    assert exists(docker_client, "volume", workspace_volume_name(chub.hub_name, "gina", "ghost"))
    chub.stop_server("gina")


def test_expired_endpoint_deletes_expired_servers_through_the_hub(chub, docker_client):
    admin = chub.ensure_user("cadmin", admin=True)
    token = chub.ensure_user("temp")
    chub.spawn("temp", "short", {"days_to_live": 0.00002}, token=token)  # under 2 s
    chub.spawn("temp", "long", {"days_to_live": 3}, token=token)
    time.sleep(2)

    dry = cleanup(chub, "expired", admin, dry_run=1).json()
    assert [a["name"] for a in dry["removed"] if a["kind"] == "server"] == ["temp/short"]
    assert chub.server("temp", "short")["ready"]

    report = cleanup(chub, "expired", admin).json()
    assert report["ok"], report
    assert [a["name"] for a in report["removed"] if a["kind"] == "server"] == ["temp/short"]
    servers = chub.api("GET", "/users/temp?include_stopped_servers=1").json()["servers"]
    assert "short" not in servers and servers["long"]["ready"]
    assert containers_of(docker_client, chub.hub_name, "temp", "short") == []
    assert containers_of(docker_client, chub.hub_name, "temp", "long", all=False)
    assert any(a["name"] == "temp/long" and a["reason"].startswith("expires at") for a in report["kept"])
    chub.stop_server("temp", "long", remove=True)


def test_a_run_that_fails_halfway_is_finished_by_the_next(chub, docker_client):
    admin = chub.ensure_user("cadmin", admin=True)
    ghost = leftovers(docker_client, chub.hub_name, "ghost2", chub.install_id())
    # something outside MLHub holds the volume: the engine refuses to remove it
    holder = docker_client.containers.run(
        WORKSPACE_IMAGE,
        ["sleep", "600"],
        detach=True,
        volumes={ghost["volume"]: {"bind": "/data", "mode": "rw"}},
    )
    try:
        first = cleanup(chub, "users", admin).json()
        assert not first["ok"]
        (error,) = first["errors"]
        assert error["name"] == ghost["volume"] and "in use" in error["error"]
        assert not exists(docker_client, "container", ghost["container"])
        assert not exists(docker_client, "network", ghost["network"])
    finally:
        holder.remove(force=True)
    second = cleanup(chub, "users", admin).json()
    assert second["ok"] and [a["name"] for a in second["removed"]] == [ghost["volume"]]
    assert not exists(docker_client, "volume", ghost["volume"])


def test_periodic_runs(hub_factory, docker_client):
    hub = hub_factory(env={"CLEANUP_INTERVAL_SECONDS": "2"})
    admin = hub.ensure_user("padmin", admin=True)
    for _ in range(5):
        try:
            ghost = leftovers(docker_client, hub.hub_name, "ghost3", hub.install_id())
            break
        except docker.errors.NotFound:
            # a periodic run removed the new network before the container started on it: the
            # runs work; remove the half-made container and make the leftovers again
            for c in docker_client.containers.list(all=True, filters={"name": f"{hub.hub_name}-ghost3"}):
                c.remove(force=True)
    else:
        raise AssertionError("could not make the leftovers between two periodic runs")
    deadline = time.monotonic() + 30
    while exists(docker_client, "container", ghost["container"]) or exists(
        docker_client, "network", ghost["network"]
    ):
        assert time.monotonic() < deadline, "periodic cleanup did not run"
        time.sleep(0.5)
    # the run that removed them stores its report when it finishes
    while set((status := cleanup(hub, "status", admin).json())["last_runs"]) != {"users", "expired"}:
        assert time.monotonic() < deadline, f"no report of both periodic runs: {status}"
        time.sleep(0.5)
    assert status["interval_seconds"] == 2 and status["next_run_at"] > status["now"] - 1
    removed = {a["name"] for a in status["last_runs"]["users"]["removed"]}
    assert removed <= set(ghost.values())


def _browser_session(hub) -> requests.Session:
    """The admin logged in to the hub, then to the service through OAuth (as a browser)."""
    session = login(hub.url, "admin", ADMIN_PASSWORD)
    del session.headers["X-XSRFToken"]  # a browser following a link sends none
    page = session.get(
        f"{hub.url}/services/cleanup-service/status", headers={"Accept": "text/html"}, timeout=60
    )
    assert page.status_code == 200 and page.url.endswith("/services/cleanup-service/status"), (
        page.status_code,
        page.url,
    )
    return session


def test_a_browser_get_only_previews_and_a_post_with_xsrf_runs(chub, docker_client):
    """A link the admin follows (a GET with the service's login cookie) shows what a run
    would remove and removes nothing; the page's button (POST with _xsrf) runs it; a POST
    without the token is refused. Scripts with a token still run on GET."""
    ghost = leftovers(docker_client, chub.hub_name, "linked", chub.install_id())
    session = _browser_session(chub)
    url = f"{chub.url}/services/cleanup-service/users"
    for accept in ("text/html", "application/json"):
        preview = session.get(url, headers={"Accept": accept}, allow_redirects=False, timeout=120)
        assert preview.status_code == 200, preview.text
        assert ghost["container"] in preview.text
        assert all(exists(docker_client, kind, name) for kind, name in ghost.items()), (
            f"a GET ({accept}) removed objects"
        )
    assert preview.json()["dry_run"] is True
    page = session.get(url, headers={"Accept": "text/html"}, timeout=120)
    assert "would remove" in page.text

    refused = session.post(url, data={}, allow_redirects=False, timeout=120)
    assert refused.status_code == 403, refused.text
    assert all(exists(docker_client, kind, name) for kind, name in ghost.items())

    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    ran = session.post(url, data={"_xsrf": xsrf}, headers={"Accept": "text/html"}, timeout=120)
    assert ran.status_code == 200, ran.text
    assert "Cleanup of users: done" in ran.text and ghost["container"] in ran.text
    assert not any(exists(docker_client, kind, name) for kind, name in ghost.items())

    # a script with an admin's token: GET runs (ML Hub's API), POST runs too
    admin = chub.ensure_user("cadmin", admin=True)
    for method in ("GET", "POST"):
        again = leftovers(docker_client, chub.hub_name, f"script{method.lower()}", chub.install_id())
        reply = requests.request(method, url, headers={"Authorization": f"token {admin}"}, timeout=120)
        assert reply.status_code == 200 and reply.json()["dry_run"] is False, reply.text
        assert not any(exists(docker_client, kind, name) for kind, name in again.items()), method
