"""The workspace image without a hub: jobs as ML Workspace runs them (EXECUTE_CODE: a folder with
requirements.txt and setup.sh, a git URL in pip's VCS form) and standalone mode
(``docker run -p 8080:8080 mlhub/workspace``) behind a token. Real containers, no network inside:
wheels are made here and handed in."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

from devtools.hubprocess import LABEL_ORIGIN, TEST_HUB_PREFIX, claim_hub_name
from tests.support.images import WORKSPACE_IMAGE
from tests.support.wheels import make_wheel

#: claimed, so that another test run's sweep of leftovers spares this run's containers
ORIGIN = {LABEL_ORIGIN: claim_hub_name(f"{TEST_HUB_PREFIX}-standalone-{secrets.token_hex(3)}")}
NO_NETWORK = {"network_mode": "none"}


def run_job(docker_client, env: dict[str, str], volumes: dict[str, dict[str, str]]) -> tuple[int, str]:
    container = docker_client.containers.run(
        WORKSPACE_IMAGE,
        environment={"INCLUDE_TUTORIALS": "false", **env},
        volumes=volumes,
        labels=ORIGIN,
        detach=True,
        **NO_NETWORK,
    )
    try:
        return container.wait(timeout=180)["StatusCode"], container.logs().decode()
    finally:
        container.remove(force=True)


def test_standalone_mode_with_a_password(docker_client):
    container = docker_client.containers.run(
        WORKSPACE_IMAGE,
        ports={"8080/tcp": ("127.0.0.1", None)},
        labels=ORIGIN,
        detach=True,
        environment={"WORKSPACE_AUTH_PASSWORD": "correct horse battery", "INCLUDE_TUTORIALS": "false"},
    )
    try:
        container.reload()
        base = f"http://127.0.0.1:{container.ports['8080/tcp'][0]['HostPort']}"
        session = requests.Session()
        deadline = time.monotonic() + 90
        while True:
            try:
                session.get(f"{base}/login", timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, container.logs().decode()[-2000:]
                time.sleep(0.5)
        assert "token=" not in container.logs().decode()  # no token to leak: the password only
        xsrf = session.cookies.get("_xsrf")
        wrong = session.post(
            f"{base}/login", data={"password": "wrong", "_xsrf": xsrf}, allow_redirects=False, timeout=30
        )
        assert session.get(f"{base}/api/status", timeout=10).status_code == 403, wrong.status_code
        right = session.post(
            f"{base}/login",
            data={"password": "correct horse battery", "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        assert right.status_code == 302, right.status_code
        assert session.get(f"{base}/api/status", timeout=10).status_code == 200
    finally:
        container.remove(force=True)


@pytest.fixture
def job_folder(tmp_path: Path) -> Path:
    """A job: requirements.txt naming a package only found in wheels/ (PIP_FIND_LINKS), setup.sh,
    main.py that uses both."""
    job = tmp_path / "job"
    (job / "wheels").mkdir(parents=True)
    make_wheel(job / "wheels", "mlhubjobdep", version="2.0")
    (job / "requirements.txt").write_text("mlhubjobdep==2.0\n")
    (job / "setup.sh").write_text("echo prepared > /tmp/prepared\n")
    (job / "main.py").write_text(
        "import sys, mlhubjobdep\nprint('job uses', mlhubjobdep.WHO, open('/tmp/prepared').read().strip())\n"
        "sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)\n"
    )
    for path in (tmp_path, job, job / "wheels"):
        path.chmod(0o755)
    return job


OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/job/wheels"}


def test_folder_job_installs_its_requirements_and_exits_0(docker_client, job_folder):
    code, logs = run_job(
        docker_client,
        {"EXECUTE_CODE": "/job", **OFFLINE_PIP},
        {str(job_folder): {"bind": "/job", "mode": "ro"}},
    )
    assert code == 0, logs
    assert "job uses mlhubjobdep 2.0 prepared" in logs


def test_folder_job_whose_requirements_cannot_install_fails(docker_client, job_folder):
    (job_folder / "requirements.txt").write_text("mlhubjobdep==9.9\n")
    code, logs = run_job(
        docker_client,
        {"EXECUTE_CODE": "/job", **OFFLINE_PIP},
        {str(job_folder): {"bind": "/job", "mode": "ro"}},
    )
    assert code == 1 and "installing requirements.txt failed" in logs, logs
    assert "job uses" not in logs


def test_git_url_job_with_ref_and_subdirectory(docker_client, job_folder, tmp_path):
    """git+file://...@<tag>#subdirectory=<path>: the tagged commit's folder runs; a later commit
    on the branch that makes it fail is not the one checked out."""
    repo = tmp_path / "repo"
    (repo / "jobs").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(job_folder), str(repo / "jobs" / "train")], check=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "job"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    (repo / "jobs" / "train" / "main.py").write_text("import sys\nsys.exit(5)\n")
    subprocess.run([*git, "commit", "-q", "-am", "break it"], check=True)
    subprocess.run(["chown", "-R", "1000:100", str(repo)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)
    volumes = {
        str(repo): {"bind": "/srv/repo", "mode": "ro"},
        str(job_folder / "wheels"): {"bind": "/job/wheels", "mode": "ro"},
    }

    code, logs = run_job(
        docker_client,
        {"EXECUTE_CODE": "git+file:///srv/repo@v1#subdirectory=jobs/train", **OFFLINE_PIP},
        volumes,
    )
    assert code == 0, logs
    assert "job uses mlhubjobdep 2.0 prepared" in logs
    # the branch's head: the job's own exit status comes back
    code, logs = run_job(
        docker_client,
        {"EXECUTE_CODE": "git+file:///srv/repo#subdirectory=jobs/train", **OFFLINE_PIP},
        volumes,
    )
    assert code == 5, logs


def test_standalone_mode_answers_on_8080_behind_a_token(docker_client):
    container = docker_client.containers.run(
        WORKSPACE_IMAGE,
        ports={"8080/tcp": ("127.0.0.1", None)},
        labels=ORIGIN,
        detach=True,
        environment={"NOTEBOOK_ARGS": "--LabApp.default_url=/lab/tree/tutorials"},
    )
    try:
        deadline = time.monotonic() + 90
        token = None
        while token is None:
            assert time.monotonic() < deadline, container.logs().decode()[-2000:]
            found = re.search(
                r"standalone mode \(no hub\): open http://<host>:8080/lab\?token=(\w+)",
                container.logs().decode(),
            )
            token = found and found.group(1)
            time.sleep(0.5)
        container.reload()
        base = f"http://127.0.0.1:{container.ports['8080/tcp'][0]['HostPort']}"
        while True:
            try:
                status = requests.get(f"{base}/api/status", timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, container.logs().decode()[-2000:]
                time.sleep(0.5)
        assert status.status_code == 403, status.status_code  # no credentials, no answer
        lab = requests.get(f"{base}/lab", allow_redirects=False, timeout=10)
        assert lab.status_code == 302 and "/login" in lab.headers["Location"]
        assert (
            requests.get(
                f"{base}/api/status", headers={"Authorization": "token wrong"}, timeout=10
            ).status_code
            == 403
        )
        auth = {"Authorization": f"token {token}"}
        assert requests.get(f"{base}/api/status", headers=auth, timeout=10).status_code == 200
        assert requests.get(f"{base}/lab", headers=auth, timeout=30).status_code == 200
        home = requests.get(f"{base}/", headers=auth, allow_redirects=False, timeout=10)
        assert home.headers["Location"].startswith("/lab/tree/tutorials"), (
            home.headers
        )  # NOTEBOOK_ARGS honoured
        deadline = time.monotonic() + 90
        while (monitor := requests.get(f"{base}/tools/glances/", headers=auth, timeout=30)).status_code in (
            502,
            503,
            504,
        ):
            assert time.monotonic() < deadline
            time.sleep(1)
        assert monitor.status_code == 200 and monitor.url.endswith("/tools/monitor/"), monitor.url
        assert requests.get(f"{base}/tools/monitor/", timeout=10, allow_redirects=False).status_code in (
            302,
            403,
        )
    finally:
        container.remove(force=True)
