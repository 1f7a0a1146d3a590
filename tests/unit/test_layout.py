"""The renovated layout holds: the folders are the architecture, and nothing runs upward."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

import mlhub

ROOT = Path(mlhub.__file__).resolve().parent
REPO = ROOT.parent
FRAMEWORKS = {"jupyterhub", "docker", "dockerspawner", "kubespawner", "kubernetes", "kubernetes_asyncio"}
FRAMEWORKS |= {"tornado", "asyncssh", "nativeauthenticator", "sqlalchemy", "requests"}
#: which mlhub sub-packages each may import (a room stands above what it uses)
MAY_IMPORT = {
    "core": {"core"},
    "engines": {"core", "engines"},
    "hub": {"core", "engines", "hub"},
    "spawners": {"core", "engines", "hub", "spawners"},
    "services": {"core", "engines", "services"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_core_imports_no_framework():
    for path in _modules("core"):
        heavy = {name for name in _imports(path) if name.split(".")[0] in FRAMEWORKS}
        assert not heavy, f"{path.relative_to(REPO)} imports {sorted(heavy)}"


def test_no_package_imports_upward():
    for package, allowed in MAY_IMPORT.items():
        for path in _modules(package):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "mlhub" and len(parts) > 1 and parts[1] in MAY_IMPORT:
                    assert parts[1] in allowed, f"{path.relative_to(REPO)} imports {name} (above {package})"


def test_the_version_is_in_one_place():
    chart = yaml.safe_load((REPO / "helm" / "mlhub" / "Chart.yaml").read_text())
    assert chart["appVersion"] == mlhub.__version__
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "mlhub.__version__"' in pyproject
    assert f"## {mlhub.__version__}" in (REPO / "CHANGELOG.md").read_text()


def test_ml_hubs_class_paths_still_work():
    import mlhubspawner
    from mlhub.spawners.docker import MLHubDockerSpawner
    from mlhub.spawners.kube import MLHubKubeSpawner

    assert mlhubspawner.MLHubDockerSpawner is MLHubDockerSpawner
    assert mlhubspawner.MLHubKubernetesSpawner is MLHubKubeSpawner
    assert mlhubspawner.MLHubKubeSpawner is MLHubKubeSpawner


def test_no_module_over_500_lines():
    long = {
        str(path.relative_to(REPO)): n
        for path in ROOT.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 500
    }
    assert long == {}
