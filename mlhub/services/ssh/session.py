"""SSH channels bridged to processes and ports inside a workspace.

:class:`Bridge` moves bytes both ways between an asyncssh channel and a *pipe* (a process
started through the engine, or a TCP connection), with flow control on both sides: when the
pipe's write buffer fills, the channel stops reading; when the channel's window is full, the
pump stops reading the pipe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncssh
from prometheus_client import Counter, Gauge

from mlhub.core.background import background
from mlhub.engines.base import STDERR, STDOUT, WriterSide

# on the hub's /hub/metrics through mlhub.services.metrics (docs/metrics.md)
SSH_SESSIONS = Counter(
    "mlhub_ssh_sessions",
    "SSH channels opened to workspaces: shell, exec, sftp, or tcp (ssh -L)",
    ["kind"],
)
SSH_OPEN = Gauge("mlhub_ssh_sessions_open", "SSH channels to workspaces open now")
SSH_BYTES = Counter(
    "mlhub_ssh_bytes",
    "Bytes through the SSH gateway: in = from clients to workspaces, out = back",
    ["direction"],
)


log = logging.getLogger("mlhub.services.ssh")

HIGH_WATER = 1 << 20


class Pipe(Protocol):
    async def read(self) -> tuple[int, bytes]: ...
    def write(self, data: bytes) -> None: ...
    def write_buffer_size(self) -> int: ...
    async def drain(self) -> None: ...
    def write_eof(self) -> None: ...
    def close(self) -> None: ...


class Activity(Protocol):
    """Told when a session starts running in its workspace and when it ends (see activity.py)."""

    def opened(self) -> None: ...
    def closed(self) -> None: ...


class TCPPipe(WriterSide):
    """A TCP connection with the :class:`Pipe` interface (all output counts as stdout)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def read(self) -> tuple[int, bytes]:
        try:
            data = await self.reader.read(65536)
        except ConnectionError:
            data = b""
        return (STDOUT, data) if data else (0, b"")


class Bridge:
    """Shared pumping for session and TCP channels (mixed into asyncssh session classes)."""

    chan: Any
    pipe: Pipe | None

    def _bridge_init(self) -> None:
        self.chan = None
        self.pipe = None
        self._pending: list[bytes] = []
        self._eof_pending = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._draining = False
        self._pump_task: asyncio.Task | None = None

    # --- channel -> pipe
    def data_received(self, data: bytes, datatype: Any) -> None:
        SSH_BYTES.labels(direction="in").inc(len(data))
        if self.pipe is None:
            self._pending.append(data)
            return
        self.pipe.write(data)
        if self.pipe.write_buffer_size() > HIGH_WATER and not self._draining:
            self._draining = True
            self.chan.pause_reading()
            background(self._drain())

    async def _drain(self) -> None:
        if self.pipe is not None:
            await self.pipe.drain()
        self._draining = False
        if self.chan is not None:
            self.chan.resume_reading()

    def eof_received(self) -> bool:
        if self.pipe is None:
            self._eof_pending = True
        else:
            self.pipe.write_eof()
        return True  # keep the channel half open: output may still come

    # --- pipe -> channel
    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def attach(self, pipe: Pipe, on_end: Callable[[], Awaitable[None]]) -> None:
        """Start moving bytes between the channel and *pipe*; *on_end* runs when output ends."""
        SSH_SESSIONS.labels(kind=getattr(self, "kind", "") or "tcp").inc()
        SSH_OPEN.inc()
        self._counted_open = True
        self.pipe = pipe
        for data in self._pending:
            pipe.write(data)
        self._pending.clear()
        if self._eof_pending:
            pipe.write_eof()
        self._pump_task = asyncio.ensure_future(self._pump(on_end))

    async def _pump(self, on_end: Callable[[], Awaitable[None]]) -> None:
        try:
            while True:
                kind, data = await self.pipe.read()
                if not data:
                    break
                await self._can_write.wait()
                SSH_BYTES.labels(direction="out").inc(len(data))
                if kind == STDERR and hasattr(self.chan, "write_stderr"):
                    self.chan.write_stderr(data)
                else:
                    self.chan.write(data)
            await on_end()
        except Exception:
            log.exception("SSH channel pump failed")
            self.chan.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_counted_open", False):
            self._counted_open = False
            SSH_OPEN.dec()
        if self.pipe is not None:
            self.pipe.close()
        if self._pump_task is not None and not self._pump_task.done():
            self._pump_task.cancel()


class TCPSession(Bridge, asyncssh.SSHTCPSession):
    """``ssh -L``: a forwarded connection to a port inside the workspace."""

    def __init__(self, pipe: Pipe, label: str, activity: Activity | None = None):
        self._bridge_init()
        self._ready_pipe = pipe
        self.label = label
        self.activity = activity

    def connection_made(self, chan: Any) -> None:
        self.chan = chan

    def session_started(self) -> None:
        self.attach(self._ready_pipe, self._ended)
        if self.activity is not None:
            self.activity.opened()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.activity is not None:
            self.activity.closed()

    async def _ended(self) -> None:
        self.chan.write_eof()
        self.chan.close()


class WorkspaceSession(Bridge, asyncssh.SSHServerSession):
    """A shell, a command or the sftp subsystem, run as a process in the workspace.

    *start* is called once the client has said what it wants: ``start(kind, command, term,
    size, env)`` with kind ``shell``, ``exec`` or ``sftp``; it returns the process's pipe (an
    exec stream), or raises with a message for the user.
    """

    def __init__(self, start: Callable[..., Awaitable[Any]], label: str, activity: Activity | None = None):
        self._bridge_init()
        self.start = start
        self.label = label
        self.activity = activity
        self.kind = ""
        self.command = ""
        self.term = ""
        self.size = (0, 0)

    def connection_made(self, chan: Any) -> None:
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any) -> bool:
        self.term = term_type
        self.size = term_size[:2]
        return True

    def shell_requested(self) -> bool:
        self.kind = "shell"
        return True

    def exec_requested(self, command: str) -> bool:
        self.kind, self.command = "exec", command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp":
            return False
        self.kind = "sftp"
        return True

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.size = (width, height)
        if self.pipe is not None and hasattr(self.pipe, "resize"):
            background(self.pipe.resize(width, height))

    def break_received(self, msec: int) -> bool:
        return False

    def eof_received(self) -> bool:
        # A terminal has no half-close (sshd ignores EOF on a pty too); passing it on would
        # make the engine end the whole stream and drop output still on its way.
        if self.term and self.kind != "sftp":
            return True
        if self.kind == "sftp" and self.pipe is not None and not getattr(self.pipe, "can_close_stdin", True):
            # sftp-server ends only at EOF; the client sends EOF only when it is done, so where
            # EOF cannot be passed on, ending the process is the same thing
            self._forced_end = True
            self.pipe.close()
            return True
        return super().eof_received()

    def session_started(self) -> None:
        background(self._start())

    async def _start(self) -> None:
        try:
            pipe = await self.start(
                self.kind, self.command, self.term, self.size, dict(self.chan.get_environment())
            )
        except UserFacingError as exc:
            self._fail(str(exc), exc.exit_status)
            return
        except Exception as exc:
            log.exception("Starting %s for %s failed", self.kind, self.label)
            self._fail(f"the gateway could not start your {self.kind}: {exc}", 255)
            return
        self.attach(pipe, self._ended)
        if self.activity is not None:
            self.activity.opened()

    def _fail(self, message: str, status: int) -> None:
        self.chan.write_stderr(f"MLHub: {message}\r\n".encode())
        self.chan.exit(status)

    async def _ended(self) -> None:
        status = await self.pipe.exit_code() if hasattr(self.pipe, "exit_code") else 0
        self.pipe.close()
        if status is None and getattr(self, "_forced_end", False):
            status = 0
        self.chan.exit(255 if status is None else status)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.pipe is not None and hasattr(self.pipe, "hangup"):
            background(self.pipe.hangup())
        if self.activity is not None:
            self.activity.closed()


class UserFacingError(Exception):
    """Something the SSH user should read (on stderr), with the exit status to end with."""

    def __init__(self, message: str, exit_status: int = 1):
        super().__init__(message)
        self.exit_status = exit_status
