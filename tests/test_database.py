"""The hub on a real PostgreSQL server (MLHUB_DB_URL), not only SQLite."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from devtools.hubprocess import free_port


@pytest.fixture(scope="module")
def postgres():
    initdb = shutil.which("initdb")
    if not initdb:
        pytest.fail(
            "PostgreSQL (initdb, pg_ctl) is not installed; scripts/lib/setup.sh installs it for --test"
        )
    # pytest's tmp dirs are private to root; the server runs as the postgres user
    data = Path(tempfile.mkdtemp(prefix="mlhub-test-pg-"))
    shutil.chown(data, "postgres")
    port = free_port()

    def as_postgres(*cmd: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True)
        assert done.returncode == 0, f"{cmd[0]} failed: {done.stderr or done.stdout}"
        return done

    as_postgres(initdb, "-D", str(data), "-A", "trust", "-U", "postgres")
    as_postgres(
        shutil.which("pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(data / "log"),
        "-w",
        "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
        "start",
    )
    as_postgres(
        shutil.which("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlhub"
    )
    yield f"postgresql://postgres@127.0.0.1:{port}/mlhub"
    as_postgres(shutil.which("pg_ctl"), "-D", str(data), "-m", "fast", "stop")
    shutil.rmtree(data, ignore_errors=True)


def test_hub_on_postgres_keeps_servers_across_a_restart(hub_factory, postgres):
    hub = hub_factory(env={"MLHUB_DB_URL": postgres})
    token = hub.ensure_user("pat")
    r = hub.spawn("pat", "pg", {"days_to_live": 1}, token=token)
    assert r.status_code in (201, 202), r.text
    expires = hub.server("pat", "pg")["state"]["mlhub"]["expiration_timestamp"]
    assert not (hub.workdir / "data" / "jupyterhub.sqlite").exists()
    hub.restart()
    deadline = time.monotonic() + 30
    while not (model := hub.server("pat", "pg")) or not model.get("ready"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert model["state"]["mlhub"]["expiration_timestamp"] == expires
    hub.stop_server("pat", "pg", remove=True)
