# Server config baked into the MLHub workspace image (not needed by the hub).
c = get_config()  # noqa: F821
c.ServerApp.root_dir = "/workspace"
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}
