"""MLHub: a multi-user hub for ML workspaces on Docker and Kubernetes, built on JupyterHub.

The folders are the architecture (docs/architecture.md): ``core`` (pure rules and settings),
``engines`` (Docker and Kubernetes adapters), ``hub`` (the hub's configuration, pages and
authenticator), ``spawners`` and ``services`` (cleanup, SSH). Importing this package imports
nothing else.
"""

__version__ = "0.2.0"
