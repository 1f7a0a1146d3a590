"""What MLHub's services need from the engine the workspaces run on (Docker or Kubernetes);
one adapter per engine (:mod:`mlhub.engines.docker`, :mod:`mlhub.engines.kube`) offers it all.

The cleanup service lists a hub's labelled objects (:class:`Resource`) and removes them. The SSH
gateway finds a workspace by the reference the hub's spawner keeps in its state, and runs
processes in it with stdin/stdout/stderr attached (:class:`ProcessStream`); everything else
(sftp-server lookup, port relays, hang-ups) is built from those two operations.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("mlhub.engines")

STDOUT, STDERR = 1, 2

#: Sends SIGHUP to the process whose PID is in file $1, its process group and all its
#: descendants (a shell without job control leaves its children in its own group).
HANGUP_SCRIPT = r"""
p=$(cat "$1" 2>/dev/null) || exit 0
rm -f "$1"
kill -0 "$p" 2>/dev/null || exit 0
kids() {
    for s in $(grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null); do
        c=${s#/proc/}; c=${c%/status}; echo "$c"; kids "$c"
    done
}
all="$p $(kids "$p")"
kill -HUP -- "-$p" 2>/dev/null
kill -HUP $all 2>/dev/null
exit 0
"""


@dataclass(frozen=True)
class Resource:
    """One labelled object on the engine (container, network, volume; pod, PVC, ...)."""

    kind: str
    name: str
    id: str
    labels: dict[str, str]
    #: containers and pods: when the engine created it (epoch seconds; 0 unknown) and whether it
    #: runs or is about to (Docker: created/running/restarting; Kubernetes: Pending/Running)
    created: float = 0.0
    active: bool = False
    #: Docker volumes: the driver's options as the listing gave them (a capped /workspace's
    #: bind mount names its disk image), so removing one needs no further engine call
    options: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> str | None:
        return self.labels.get("mlhub.user")

    @property
    def server_name(self) -> str | None:
        return self.labels.get("mlhub.server_name")


class ExecError(RuntimeError):
    """The engine refused to run the process (workspace gone, not running, ...)."""


@dataclass(frozen=True)
class WorkspaceInfo:
    """A workspace as its engine describes it."""

    ref: str  # container id / pod name: what processes are started in
    metadata: Mapping[str, str] = field(default_factory=dict)  # labels, annotations winning
    running: bool = False
    address: str | None = None  # where its ports are reached from the gateway


def with_pid_file(cmd: Sequence[str], pid_file: str) -> list[str]:
    """*cmd*, first writing its PID to *pid_file* so a hang-up can find it later."""
    return ["/bin/sh", "-c", f'echo $$ > {pid_file}; exec "$@"', "sh", *cmd]


class WriterSide:
    """The sending half of a pipe over an asyncio stream (a Docker exec's hijacked connection,
    a TCP connection): writes, flow control, EOF, close."""

    writer: asyncio.StreamWriter

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def write_buffer_size(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError:
            pass

    def write_eof(self) -> None:
        if not self.writer.is_closing() and self.writer.can_write_eof():
            try:
                self.writer.write_eof()
            except OSError:
                pass

    def close(self) -> None:
        self.writer.close()


class ProcessStream:
    """One process in a workspace. Engines implement the I/O; hang-up is shared."""

    engine: Engine
    ref: str = ""
    pid_file: str = ""
    finished: bool = False  # its exit status was read: nothing left to hang up
    can_close_stdin: bool = True  # False: the engine cannot pass EOF on (Kubernetes' v4 protocol)

    async def read(self) -> tuple[int, bytes]:
        """The next output chunk as ``(STDOUT|STDERR, data)``; ``(0, b"")`` at the end."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def write_buffer_size(self) -> int:
        return 0

    async def drain(self) -> None:
        return None

    def write_eof(self) -> None:
        raise NotImplementedError

    async def resize(self, width: int, height: int) -> None:
        return None

    async def exit_code(self, timeout: float = 10) -> int | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    async def still_running(self) -> bool:
        return not self.finished

    async def hangup(self) -> None:
        """SIGHUP the process (and its group) if it still runs, as sshd does on disconnect."""
        if not self.pid_file:
            return
        pid_file, self.pid_file = self.pid_file, ""
        try:
            script = HANGUP_SCRIPT if await self.still_running() else 'rm -f "$1"'
            await self.engine.run(self.ref, ["/bin/sh", "-c", script, "sh", pid_file])
        except (ExecError, OSError) as exc:
            log.debug("hang-up in %s failed: %s", self.ref[:20], exc)


class Engine:
    """Base of the engine adapters. Cleanup: :meth:`list_resources`, :meth:`remove`. Processes:
    :meth:`workspace` and :meth:`start`; the rest is built on them."""

    async def list_resources(self, hub_name: str) -> list[Resource]:
        """Every object labelled ``mlhub.origin=<hub_name>``."""
        raise NotImplementedError

    async def remove(self, resource: Resource) -> None:
        """Remove one object; one that is already gone counts as removed."""
        raise NotImplementedError

    async def workspace(self, ref: str) -> WorkspaceInfo | None:
        raise NotImplementedError

    async def start(
        self,
        ref: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        env: Mapping[str, str] | None = None,
        hangup_file: str = "",
    ) -> ProcessStream:
        raise NotImplementedError

    async def run(
        self, ref: str, cmd: Sequence[str], stdin: bytes = b"", timeout: float = 60
    ) -> tuple[int | None, bytes, bytes]:
        """Run *cmd* to the end; ``(exit code, stdout, stderr)``. The command must not wait
        for the end of stdin (some engines cannot close it): read exactly what it is given."""
        stream = await self.start(ref, cmd)
        if stdin:
            stream.write(stdin)
            await stream.drain()
        stream.write_eof()  # where the engine can; commands here never wait for it
        out, err = bytearray(), bytearray()

        async def collect() -> None:
            while True:
                kind, data = await stream.read()
                if not data:
                    return
                (err if kind == STDERR else out).extend(data)

        try:
            await asyncio.wait_for(collect(), timeout)
        finally:
            stream.close()
        return await stream.exit_code(), bytes(out), bytes(err)

    async def put_file(self, ref: str, path: str, data: bytes, mode: str = "755") -> None:
        """Write *data* to *path* in the workspace (copied through a process's stdin)."""
        status, _, err = await self.run(
            ref, ["/bin/sh", "-c", f'head -c {len(data)} > "$1" && chmod {mode} "$1"', "sh", path], stdin=data
        )
        if status != 0:
            raise ExecError(f"could not write {path}: {err.decode(errors='replace').strip()}")
