"""Run DockerSpawner's own test suite (tag 14.0.0) against stock DockerSpawner, then against
``MLHubDockerSpawner``, and print the tests that pass on stock but fail on MLHub.

    PATH=/work/main/.venv/bin:$PATH python devtools/dockerspawner_compat.py [-k EXPR] [--keep]

Nothing of DockerSpawner's is kept in this repository: the tests come from the 14.0.0 sdist on
PyPI (``pip download``), their ``conftest.py`` (not in the sdist) from a git checkout of
jupyterhub/dockerspawner (``--repo``, default ``$DOCKERSPAWNER_REPO`` or a clone from GitHub),
into a temporary folder. pytest-asyncio and psutil (their test dependencies) are installed into
that folder too, never into the venv. No registry is needed: the images their tests name are
tags of ``mlhub/test-stock:latest`` made for the run and removed after it (only tags this
script made). MLHub's run uses hub name ``dscompat``; its objects are removed at the end.
See docs/decisions/dockerspawner-compatibility.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

VERSION = "14.0.0"
STOCK_IMAGE = "mlhub/test-stock:latest"
HUB_NAME = "dscompat"
ROOT = Path(__file__).resolve().parent.parent
#: images the 14.0.0 tests start (the default image on JupyterHub 6.1, and allowed_images cases)
IMAGES = (
    "quay.io/jupyterhub/singleuser:6.1",
    "quay.io/jupyterhub/singleuser:4.0",
    "quay.io/jupyterhub/singleuser:4",
)
OUTCOMES = (("failure", "failed"), ("error", "error"), ("skipped", "skipped"))
TEST_FILES = ("tests/test_dockerspawner.py", "tests/test_deprecations.py")

PLUGIN = f'''
"""Substitutes MLHubDockerSpawner for DockerSpawner in DockerSpawner's tests."""
import dockerspawner
from traitlets import default

from mlhub.spawners.docker import MLHubDockerSpawner


class DockerSpawner(MLHubDockerSpawner):  # the name their tests and log messages expect
    @default("hub_name")
    def _compat_hub_name(self):
        return {HUB_NAME!r}

    @default("workspace_disk_limit")
    def _compat_no_disk_images(self):
        return 0


dockerspawner.DockerSpawner = DockerSpawner
'''


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kwargs)


def fetch(work: Path, repo: str | None) -> None:
    run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         f"dockerspawner=={VERSION}", "-d", str(work / "sdist")])  # fmt: skip
    (sdist,) = (work / "sdist").glob("dockerspawner-*.tar.gz")
    with tarfile.open(sdist) as tar:
        for name in (*TEST_FILES, "pyproject.toml"):
            member = tar.getmember(f"dockerspawner-{VERSION}/{name}")
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    if repo is None:
        repo = str(work / "repo")
        run(["git", "clone", "-q", "--bare", "https://github.com/jupyterhub/dockerspawner", repo])
    conftest = run(["git", "-C", repo, "show", f"{VERSION}:tests/conftest.py"], capture_output=True).stdout
    (work / "tests" / "conftest.py").write_bytes(conftest)
    (work / "mlhub_compat_plugin.py").write_text(PLUGIN)
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(work / "pkgs"),
         "pytest-asyncio", "psutil"])  # fmt: skip


def tag_images() -> list[str]:
    made = []
    for image in IMAGES:
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            run(["docker", "tag", STOCK_IMAGE, image])
            made.append(image)
    return made


def suite(work: Path, side: str, select: str | None) -> dict[str, str]:
    """Run the suite; {test id: passed|failed|skipped|error}."""
    report = work / f"{side}.xml"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
           f"--junitxml={report}", *TEST_FILES]  # fmt: skip
    if side == "mlhub":
        cmd[3:3] = ["-p", "mlhub_compat_plugin"]
    if select:
        cmd += ["-k", select]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(work / "pkgs"), str(work), str(ROOT)])}
    # the hub of their tests needs configurable-http-proxy (MLHub's install puts it here)
    for root in (ROOT, Path(sys.prefix).parent):
        env["PATH"] = f"{env['PATH']}{os.pathsep}{root / '.mlhub/node/node_modules/.bin'}"
    with open(work / f"{side}.log", "w") as log:
        subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    results: dict[str, str] = {}
    rank = ["passed", "skipped", "error", "failed"]
    for case in ET.parse(report).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        # a test may appear twice (call, then its teardown): the worst outcome counts, and a
        # failure over an error (their debug fixture errs in teardown after every failure)
        outcome = next((o for t, o in OUTCOMES if t in tags), "passed")
        key = f"{case.get('classname')}::{case.get('name')}"
        results[key] = max(results.get(key, "passed"), outcome, key=rank.index)
    return results


def clean(made: list[str]) -> None:
    import docker

    sys.path.insert(0, str(ROOT))
    from devtools.hubprocess import remove_test_objects

    client = docker.from_env()
    remove_test_objects(client, HUB_NAME)
    for container in client.containers.list(all=True, filters={"label": f"mlhub.origin={HUB_NAME}"}):
        container.remove(force=True)
    for image in made:
        client.images.remove(image, noprune=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repo", default=os.environ.get("DOCKERSPAWNER_REPO"), help="git checkout of dockerspawner"
    )
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset of the suite)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dscompat-"))
    made: list[str] = []
    try:
        fetch(work, args.repo)
        made = tag_images()
        stock = suite(work, "stock", args.select)
        clean([])
        mlhub = suite(work, "mlhub", args.select)
    finally:
        clean(made)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    regressions = sorted(t for t, r in stock.items() if r == "passed" and mlhub.get(t) != "passed")
    for side, results in (("stock DockerSpawner", stock), ("MLHubDockerSpawner", mlhub)):
        counts = {
            o: sum(1 for r in results.values() if r == o) for o in ("passed", "failed", "error", "skipped")
        }
        print(f"{side:20} " + ", ".join(f"{n} {o}" for o, n in counts.items()))
    print(f"\nPass on stock, fail on MLHub: {len(regressions)}")
    if regressions:
        width = max(len(t) for t in regressions)
        print(f"{'test':{width}}  stock   mlhub")
        for test in regressions:
            print(f"{test:{width}}  passed  {mlhub.get(test, 'missing')}")
    if args.keep:
        print(f"\nlogs: {work}/stock.log, {work}/mlhub.log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
