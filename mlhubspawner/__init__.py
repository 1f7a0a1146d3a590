"""ML Hub's class paths, kept as thin aliases of the `mlhub` package.

ML Hub configured ``c.JupyterHub.spawner_class = "mlhubspawner.MLHubDockerSpawner"`` (and
``mlhubspawner.MLHubKubernetesSpawner``); those names keep working. New configuration should use
the entry point names (``mlhub-docker``, ``mlhub-kubernetes``) or ``mlhub.spawners``.
"""

from __future__ import annotations

from typing import Any

from mlhub import __version__
from mlhub.spawners.docker import MLHubDockerSpawner

__all__ = ["MLHubDockerSpawner", "MLHubKubeSpawner", "MLHubKubernetesSpawner", "__version__"]


def __getattr__(name: str) -> Any:
    # KubeSpawner (and its Kubernetes client) is imported only by hubs that use it
    if name in ("MLHubKubeSpawner", "MLHubKubernetesSpawner"):
        from mlhub.spawners.kube import MLHubKubeSpawner

        return MLHubKubeSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
