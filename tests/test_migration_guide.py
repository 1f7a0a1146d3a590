"""docs/migrating-from-ml-hub.md, done for real: its *tested* blocks run as written (only the
install's names substituted) on the real Docker engine, against a database made by the real
JupyterHub 1.5.1 with ML Hub's NativeAuthenticator fork (tests/data/ml-hub-db.sql), and
ML Hub-like workspace objects (labels and names as ML Hub's spawner made them). Then a real
MLHub hub runs on the result: ML Hub's users log in with their old passwords, and a workspace
started from a migrated server has its old files."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from devtools.hubprocess import REPO, HubProcess, new_hub_name, remove_test_objects
from tests.support.engine_objects import cleanup
from tests.support.helm_hub import hub_config_from_chart
from tests.support.images import WORKSPACE_IMAGE
from tests.support.web import login_state

GUIDE = REPO / "docs" / "migrating-from-ml-hub.md"
ML_HUB_DB = REPO / "tests" / "data" / "ml-hub-db.sql"
HUB_IMAGE = "mlhub/mlhub:latest"
#: the hub image runs this tree's mlhub package (the image may predate it)
THIS_TREE = f"-v {REPO / 'mlhub'}:/opt/mlhub/lib/python3.11/site-packages/mlhub:ro"


def guide_block(name: str) -> str:
    """The code block after ``<!-- tested: name -->``."""
    match = re.search(rf"<!-- tested: {re.escape(name)} -->\n```\w+\n(.*?)```", GUIDE.read_text(), re.S)
    assert match, f"no block {name!r} in {GUIDE.name}"
    return match.group(1)


def run_block(name: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a bash block of the guide with the install's names in *env* (the block's own
    literal assignments, the guide's example names, give way to them)."""
    lines = [
        line
        for line in guide_block(name).splitlines()
        if not re.match(r"^(?:[A-Z_]+=\S*\s+)*[A-Z_]+=[^$\s]*(\s+#.*)?$", line)
    ]
    lines = [
        line.replace("--entrypoint", f"{THIS_TREE} --entrypoint") if HUB_IMAGE.split(":")[0] in line else line
        for line in lines
    ]
    script = "set -euo pipefail\n" + "\n".join(lines)
    result = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{name}:\n{script}\n{result.stdout}\n{result.stderr}"
    return result


def load_ml_hub_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(ML_HUB_DB.read_text())
    db.close()


def docker(*args: str, input: bytes | None = None) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, input=input).stdout.decode()


def schema_of(path: Path) -> tuple[str, set[str]]:
    db = sqlite3.connect(path)
    try:
        (revision,) = db.execute("select version_num from alembic_version").fetchone()
        columns = {row[1] for row in db.execute("pragma table_info(users_info)")}
    finally:
        db.close()
    return revision, columns


def jupyterhub_head() -> str:
    from alembic.script import ScriptDirectory
    from jupyterhub import dbutil

    return ScriptDirectory(str(Path(dbutil.__file__).parent / "alembic")).get_current_head()


@pytest.fixture
def ml_hub_install(tmp_path, docker_client):
    """What an ML Hub install leaves on the engine: its (stopped) container named HUB_NAME, its
    /data volume with the database, a named server's volume and a default server's container
    with files in /workspace, labelled as ML Hub's spawner labelled them."""
    hub = new_hub_name()
    data = f"{hub}-data-{uuid.uuid4().hex[:6]}"
    db_dir = tmp_path / "ml-hub"
    db_dir.mkdir()
    load_ml_hub_db(db_dir / "jupyterhub.sqlite")
    labels = ["--label", f"mlhub.origin={hub}", "--label", "mlhub.user=alice"]
    try:
        docker("volume", "create", data)
        docker("run", "--rm", "-v", f"{data}:/data", "-v", f"{db_dir}:/src:ro", "--entrypoint", "cp",
               HUB_IMAGE, "/src/jupyterhub.sqlite", "/data/jupyterhub.sqlite")  # fmt: skip
        docker("create", "--name", hub, "--label", "test=ml-hub-container", HUB_IMAGE)
        # a named server's volume, files written by root (ML Hub's workspaces ran as root)
        docker("volume", "create", *labels, "--label", "mlhub.server_name=gpu", f"ws-alice-{hub}gpu")
        docker("run", "--rm", "-v", f"ws-alice-{hub}gpu:/workspace", "--user", "0", "--entrypoint", "sh",
               WORKSPACE_IMAGE, "-c", "mkdir -p /workspace/project && echo from-volume > /workspace/project/notes.txt")  # fmt: skip
        # the default server: files in the container itself
        docker("create", "--name", f"ws-alice-{hub}", *labels, "--label", "mlhub.server_name=",
               "--label", "expiration_timestamp_seconds=0", WORKSPACE_IMAGE)  # fmt: skip
        (tmp_path / "notes.txt").write_text("from-container\n")
        tar = subprocess.run(["tar", "-c", "-C", str(tmp_path), "notes.txt"], check=True, capture_output=True)
        docker("cp", "-", f"ws-alice-{hub}:/workspace", input=tar.stdout)
        yield hub, data
    finally:
        for name in (hub, f"ws-alice-{hub}"):
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        remove_test_objects(docker_client, hub)
        subprocess.run(["docker", "volume", "rm", "-f", data, f"ws-alice-{hub}gpu"], capture_output=True)


def test_docker_migration_as_the_guide_says(ml_hub_install, tmp_path):
    hub_name, data = ml_hub_install
    env = {"HUB_NAME": hub_name, "DATA": data}
    run_block("docker-db", env, tmp_path)
    assert (tmp_path / "ml-hub-data.tgz").stat().st_size > 0  # the backup
    assert hub_name not in docker("ps", "-a", "--format", "{{.Names}}").split()  # ML Hub's container gone
    listed = run_block("docker-list", env, tmp_path).stdout
    assert f"ws-alice-{hub_name}gpu user=alice server=gpu" in listed
    assert f"ws-alice-{hub_name} user=alice server=" in listed
    run_block("docker-copy-volume", {**env, "USER_NAME": "alice", "SERVER": "gpu", "OLD": f"ws-alice-{hub_name}gpu"}, tmp_path)  # fmt: skip
    run_block("docker-copy-container", {**env, "USER_NAME": "alice", "SERVER": "", "OLD": f"ws-alice-{hub_name}"}, tmp_path)  # fmt: skip

    # the upgraded database, as it is now in the volume
    workdir = tmp_path / "hub"
    (workdir / "data").mkdir(parents=True)
    docker("run", "--rm", "-v", f"{data}:/data:ro", "-v", f"{workdir / 'data'}:/out", "--entrypoint", "cp",
           HUB_IMAGE, "/data/jupyterhub.sqlite", "/out/")  # fmt: skip
    revision, columns = schema_of(workdir / "data" / "jupyterhub.sqlite")
    assert revision == jupyterhub_head() and "login_email_sent" in columns
    # what the guide says does not carry over: JupyterHub 2's schema change drops API tokens
    db = sqlite3.connect(workdir / "data" / "jupyterhub.sqlite")
    tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert "api_tokens" not in tables or db.execute("select count(*) from api_tokens").fetchone() == (0,)
    db.close()

    # a real MLHub hub on it (same HUB_NAME, so ML Hub's labels match)
    hub = HubProcess(workdir, hub_name, env={"MLHUB_ADMIN_PASSWORD": "not-the-old-one"})
    try:
        hub.start()
        # the cleanup's dry run lists ML Hub's workspaces as ML Hub's (and never removes them)
        cleanup_admin = hub.ensure_user("cleanupadmin", admin=True)
        dry = cleanup(hub, "users", cleanup_admin, dry_run=1).json()
        kept = {a["name"]: a["reason"] for a in dry["kept"]}
        for name in (f"ws-alice-{hub_name}", f"ws-alice-{hub_name}gpu"):
            assert kept.get(name, "").startswith("ML Hub's workspace"), (name, kept)
        assert login_state(hub.url, "alice", "alice-old-pw") == "in"
        assert login_state(hub.url, "alice", "not-her-password") == "invalid"
        assert login_state(hub.url, "admin", "ml-hub-admin-pw") == "in"  # the admin keeps theirs
        assert login_state(hub.url, "admin", "not-the-old-one") == "invalid"
        # the named server remembers ML Hub's options: refused, saying why
        refused = hub.api("POST", "/users/alice/servers/gpu")
        assert refused.status_code == 400, refused.text
        assert "image: 'mltooling/ml-workspace:0.8.7' is not allowed" in refused.json()["message"]
        for server, expected in (("gpu", "from-volume"), ("", "from-container")):
            hub.spawn("alice", server, options={"image": WORKSPACE_IMAGE})
            path = "/workspace/project/notes.txt" if server else "/workspace/notes.txt"
            name = f"{hub_name}-alice--{server}" if server else f"{hub_name}-alice"
            assert docker("exec", name, "cat", path).strip() == expected
            assert docker("exec", name, "stat", "-c", "%u:%g", path).strip() == "1000:100"
            assert docker("exec", name, "touch", "/workspace/writable").strip() == ""
    finally:
        hub.stop()


def test_kubernetes_values_upgrade_the_database_on_first_start(tmp_path):
    """The guide's Helm values, rendered by real Helm, run by the hub's config under the real
    jupyterhub command, which initializes the hub on ML Hub's database."""
    (tmp_path / "data").mkdir()
    load_ml_hub_db(tmp_path / "data" / "jupyterhub.sqlite")
    values = yaml.safe_load(guide_block("k8s-values"))
    result = hub_config_from_chart(values, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    revision, columns = schema_of(tmp_path / "data" / "jupyterhub.sqlite")
    assert revision == jupyterhub_head() and "login_email_sent" in columns
    assert list((tmp_path / "data").glob("jupyterhub.sqlite.*"))  # JupyterHub's dated copy


def test_without_the_column_every_login_fails(tmp_path):
    """Why the guide's ml_hub_db step exists: the upgraded ML Hub database, without it."""
    db = tmp_path / "jupyterhub.sqlite"
    load_ml_hub_db(db)
    from nativeauthenticator.orm import UserInfo
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from mlhub.hub.ml_hub_db import add_missing_columns

    with (
        Session(create_engine(f"sqlite:///{db}")) as session,
        pytest.raises(OperationalError, match="login_email_sent"),
    ):
        session.query(UserInfo).filter_by(username="alice").first()
    assert add_missing_columns(f"sqlite:///{db}") == ["login_email_sent"]
    assert add_missing_columns(f"sqlite:///{db}") == []  # again: nothing
    with Session(create_engine(f"sqlite:///{db}")) as session:
        alice = session.query(UserInfo).filter_by(username="alice").one()
        assert alice.is_authorized and alice.is_valid_password("alice-old-pw")
