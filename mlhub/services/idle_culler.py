"""Run jupyterhub-idle-culler so that it ends with its hub.

``python -m mlhub.services.idle_culler ARGS`` asks Linux to send SIGTERM when the hub (the
parent) dies, then becomes ``python -m jupyterhub_idle_culler ARGS`` (the request survives the
exec), so a ``kill -9``'d hub leaves no culler behind (docs/decisions/services-base.md).
"""

from __future__ import annotations

import os
import sys

from mlhub.core.lifetime import die_with_parent

if __name__ == "__main__":
    die_with_parent()
    os.execv(sys.executable, [sys.executable, "-m", "jupyterhub_idle_culler", *sys.argv[1:]])
