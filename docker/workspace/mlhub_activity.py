"""A jupyter-server extension: a workspace busy with work is active, even with nobody watching.

jupyter-server tells JupyterHub its last activity (``jupyterhub-singleuser`` posts it every
``JUPYTERHUB_ACTIVITY_INTERVAL`` seconds), and the hub's idle culler stops servers whose last
activity is older than its timeout. jupyter-server only counts requests, kernel messages and
terminal traffic to a browser, so a notebook cell that computes for hours without printing, a
training run in a terminal whose tab is closed, or ``nohup python train.py &`` would look idle.

This extension looks every few seconds (half the report interval, at most a minute) and marks
the server active (the ``mlhub_busy_last_activity`` setting, which jupyter-server's
``last_activity()`` includes, as it does every setting ending in ``_last_activity``) while:

- a kernel is executing (``execution_state == "busy"``),
- a terminal runs a command (its shell has a child process) or has printed since the last look,
- the workspace's processes together use at least BUSY_CPU_SHARE of a core (its cgroup's CPU
  time; this is what catches detached processes and work started over SSH).

The server itself, JupyterLab's tools and an idle shell stay far below that share.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any

from tornado.ioloop import PeriodicCallback

SETTING = "mlhub_busy_last_activity"
#: Share of one core the workspace's processes must use, over one look, to count as busy.
BUSY_CPU_SHARE = 0.25
#: Where the container's own CPU time is (cgroup v2: microseconds; v1: nanoseconds).
CGROUP_V2_CPU_STAT = "/sys/fs/cgroup/cpu.stat"
CGROUP_V1_USAGE = ("/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage")


def container_cpu_seconds() -> float | None:
    """CPU time used by every process of this container so far, or None where it cannot be read."""
    try:
        with open(CGROUP_V2_CPU_STAT) as fh:
            for line in fh:
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
    except (OSError, ValueError):
        pass
    for path in CGROUP_V1_USAGE:
        try:
            with open(path) as fh:
                return int(fh.read().strip()) / 1e9
        except (OSError, ValueError):
            continue
    return None


def has_children(pid: int) -> bool:
    """Whether process *pid* has a child (a terminal's shell running a command)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return bool(fh.read().strip())
    except OSError:
        pass
    for entry in os.listdir("/proc"):  # kernels without the children file
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    # "pid (comm) state ppid ...": comm may hold spaces, so split after ")"
                    if int(fh.read().rpartition(")")[2].split()[1]) == pid:
                        return True
            except (OSError, ValueError, IndexError):
                continue
    return False


class BusyWatcher:
    def __init__(self, settings: dict[str, Any], log: Any):
        self.settings = settings
        self.log = log
        self.last_check = datetime.now(timezone.utc)
        self.cpu = container_cpu_seconds()
        self.clock = time.monotonic()
        self.was_busy = False

    def reasons(self) -> list[str]:
        found = []
        kernels = getattr(self.settings.get("kernel_manager"), "_kernels", {}) or {}
        busy = [kid for kid, kernel in list(kernels.items()) if getattr(kernel, "execution_state", "") == "busy"]
        if busy:
            found.append(f"{len(busy)} kernel(s) busy")
        terminals = getattr(self.settings.get("terminal_manager"), "terminals", {}) or {}
        for name, term in list(terminals.items()):
            pid = getattr(getattr(term, "ptyproc", None), "pid", None)
            printed = getattr(term, "last_activity", None)
            if pid and has_children(pid):
                found.append(f"terminal {name} runs a command")
            elif printed is not None and _aware(printed) > self.last_check:
                found.append(f"terminal {name} printed")
        cpu, clock = container_cpu_seconds(), time.monotonic()
        if cpu is not None and self.cpu is not None and clock > self.clock:
            share = (cpu - self.cpu) / (clock - self.clock)
            if share >= BUSY_CPU_SHARE:
                found.append(f"processes use {share:.0%} of a core")
        self.cpu, self.clock = cpu, clock
        return found

    def check(self) -> None:
        try:
            found = self.reasons()
        except Exception:  # never let a look break the server
            self.log.exception("MLHub: could not check whether the workspace is busy")
            return
        now = datetime.now(timezone.utc)
        self.last_check = now
        if found:
            self.settings[SETTING] = now
        if bool(found) != self.was_busy:  # log the changes only
            self.log.info("MLHub: workspace %s", f"busy ({', '.join(found)})" if found else "no longer busy")
            self.was_busy = bool(found)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def check_interval() -> float:
    """Half of jupyterhub-singleuser's report interval, between 1 s and a minute."""
    try:
        report = float(os.environ.get("JUPYTERHUB_ACTIVITY_INTERVAL") or 300)
    except ValueError:
        report = 300
    return min(60.0, max(1.0, report / 2))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlhub_activity"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    interval = check_interval()
    watcher = BusyWatcher(serverapp.web_app.settings, serverapp.log)
    PeriodicCallback(watcher.check, interval * 1000).start()
    serverapp.log.info("MLHub: busy kernels, terminals and CPU use count as activity (checked every %gs)", interval)
