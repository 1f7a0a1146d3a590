"""MLHub spawners: JupyterHub spawners for per-user ML workspaces on Docker and Kubernetes."""

from .docker_spawner import MLHubDockerSpawner
from .options import OptionLimits, OptionsError, WorkspaceOptions, validate_options
from .spawner_base import MLHubSpawner

__version__ = "0.1.0"

__all__ = [
    "MLHubDockerSpawner",
    "MLHubSpawner",
    "OptionLimits",
    "OptionsError",
    "WorkspaceOptions",
    "validate_options",
    "__version__",
]
