"""Fair defaults for a workspace when the admin set none (docs/decisions/fair-defaults.md).

Every workspace gets a CPU and a memory limit: 1 core and 2 GiB, or a quarter of the
maximum (which is the host's size unless the admin set one), whichever is smaller. So four
busy workspaces cannot take the whole host, and a big host does not hand out big workspaces
nobody asked for. Pure functions; the spawner passes the host's size.
"""

from __future__ import annotations

import math

FAIR_CPU = 1.0
FAIR_MEMORY = 2 * 1024**3
SHARE = 0.25
MiB = 1024**2

#: Processes (and threads) one workspace may run: enough for JupyterLab, kernels, VS Code
#: and a parallel build; a fork bomb stops here.
DEFAULT_PIDS_LIMIT = 1024

#: Size of each /workspace volume on Docker (sparse: takes only what is written).
DEFAULT_WORKSPACE_DISK_LIMIT = 10 * 1024**3

#: Capabilities workspaces do without (Docker's default set keeps the others): raw sockets
#: (spoofing, sniffing on the user's network), device nodes, file capabilities, changing the
#: capability sets, the audit log, chroot. Kept: what images that start as root and then drop
#: to their user need (chown, setuid/setgid, dac_override, fowner, fsetid, kill,
#: net_bind_service), e.g. Jupyter's docker-stacks start script.
DEFAULT_CAP_DROP = ("AUDIT_WRITE", "MKNOD", "NET_RAW", "SETFCAP", "SETPCAP", "SYS_CHROOT")

#: Named servers per user.
DEFAULT_NAMED_SERVER_LIMIT = 5


def fair_cpu(maximum: float | None) -> float | None:
    """Cores for a workspace whose user left ``cpu_limit`` empty (None: maximum unknown)."""
    if not maximum:
        return None
    # 0.01-core steps, as the form; never below the validator's minimum
    return max(0.01, math.floor(min(FAIR_CPU, maximum * SHARE) * 100) / 100)


def fair_memory(maximum: int | None) -> int | None:
    """Bytes for a workspace whose user left ``mem_limit`` empty (None: maximum unknown)."""
    if not maximum:
        return None
    # whole MiB, at least Docker's minimum of 6 MiB
    return max(6 * MiB, min(FAIR_MEMORY, int(maximum * SHARE)) // MiB * MiB)
