"""MLHub's SSH gateway: ``ssh``, ``scp``, ``sftp`` and port tunnels into workspaces, through the hub."""
