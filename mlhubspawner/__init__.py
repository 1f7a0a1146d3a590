"""MLHub spawners: JupyterHub spawners for per-user ML workspaces on Docker and Kubernetes."""

from .docker_spawner import MLHubDockerSpawner
from .options import OptionLimits, OptionsError, WorkspaceOptions, validate_options
from .spawner_base import MLHubSpawner

__version__ = "0.1.0"

__all__ = [
    "MLHubDockerSpawner",
    "MLHubKubeSpawner",
    "MLHubSpawner",
    "OptionLimits",
    "OptionsError",
    "WorkspaceOptions",
    "validate_options",
    "__version__",
]


def __getattr__(name: str):
    # KubeSpawner (and its Kubernetes client) is imported only by hubs that use it
    if name == "MLHubKubeSpawner":
        from .kube_spawner import MLHubKubeSpawner

        return MLHubKubeSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
