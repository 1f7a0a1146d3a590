"""Processes inside workspace containers through the Docker engine's exec API.

Creating, inspecting and resizing an exec go through docker-py (in a thread); the exec's
stream itself is the engine's hijacked HTTP connection (``Upgrade: tcp``) read and written
with asyncio, so a session costs no thread. Without a TTY the engine multiplexes stdout and
stderr in 8-byte-headed frames; closing our write side is EOF on the process's stdin.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
from collections.abc import Mapping, Sequence
from urllib.parse import urlparse

import docker
from docker.errors import APIError, NotFound

from mlhub.services.ssh.engine import (
    STDERR,
    STDOUT,
    Engine,
    ExecError,
    ProcessStream,
    WorkspaceInfo,
    with_pid_file,
)

__all__ = ["STDERR", "STDOUT", "DockerEngine", "ExecError", "ExecStream"]

log = logging.getLogger("mlhub.services.ssh")


class ExecStream(ProcessStream):
    """A process started with ``docker exec``: the engine's hijacked connection."""

    def __init__(
        self,
        engine: DockerEngine,
        exec_id: str,
        tty: bool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ):
        self.engine = engine
        self.exec_id = exec_id
        self.tty = tty
        self.reader = reader
        self.writer = writer

    async def read(self) -> tuple[int, bytes]:
        """The next chunk of output as ``(STDOUT|STDERR, data)``; ``(0, b"")`` at the end."""
        try:
            if self.tty:
                data = await self.reader.read(65536)
                return (STDOUT, data) if data else (0, b"")
            header = await self.reader.readexactly(8)
            stream, size = header[0], struct.unpack(">I", header[4:])[0]
            return (STDERR if stream == 2 else STDOUT), await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return 0, b""

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

    async def resize(self, width: int, height: int) -> None:
        if self.tty and width and height:
            try:
                await asyncio.to_thread(self.engine.api.exec_resize, self.exec_id, height=height, width=width)
            except APIError as exc:
                log.debug("resize of exec %s failed: %s", self.exec_id[:12], exc)

    async def exit_code(self, timeout: float = 10) -> int | None:
        """The process's exit code once it has ended (None if the engine does not say in time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            info = await asyncio.to_thread(self.engine.api.exec_inspect, self.exec_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                self.finished = True
                return int(info["ExitCode"])
            if loop.time() > deadline:
                return None
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.writer.close()

    async def still_running(self) -> bool:
        try:
            info = await asyncio.to_thread(self.engine.api.exec_inspect, self.exec_id)
        except APIError:
            return False
        return bool(info.get("Running"))


class DockerEngine(Engine):
    """Workspaces as containers on a Docker engine (``DOCKER_HOST`` or the local socket)."""

    def __init__(self, environ: Mapping[str, str] = os.environ):
        self.client = docker.from_env(environment=dict(environ))
        self.api = self.client.api
        host = environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.address = urlparse(host)
        if self.address.scheme not in ("unix", "tcp", "http"):
            raise ValueError(
                f"DOCKER_HOST: the SSH gateway supports unix:// and tcp:// engines (got {host!r})"
            )
        self.api_version = self.api.api_version

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.address.scheme == "unix":
            return await asyncio.open_unix_connection(self.address.path, limit=1 << 20)
        return await asyncio.open_connection(self.address.hostname, self.address.port or 2375, limit=1 << 20)

    async def start(
        self,
        container: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        env: Mapping[str, str] | None = None,
        hangup_file: str = "",
        user: str = "",
    ) -> ExecStream:
        """Start *cmd* in *container* with stdin attached; returns its stream.

        With *hangup_file* (a path in the container), the process writes its PID there first
        so :meth:`ExecStream.hangup` can signal it later; the engine itself cannot.
        """
        if hangup_file:
            cmd = with_pid_file(cmd, hangup_file)
        try:
            created = await asyncio.to_thread(
                self.api.exec_create,
                container,
                list(cmd),
                stdin=True,
                stdout=True,
                stderr=True,
                tty=tty,
                environment=dict(env or {}),
                user=user,
            )
        except NotFound:
            raise ExecError("the workspace container is gone") from None
        except APIError as exc:
            raise ExecError(exc.explanation or str(exc)) from None
        exec_id = created["Id"]
        reader, writer = await self._connect()
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        writer.write(
            (
                f"POST /v{self.api_version}/exec/{exec_id}/start HTTP/1.1\r\n"
                "Host: docker\r\nContent-Type: application/json\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status and b" 200 " not in status:
            writer.close()
            raise ExecError(f"the engine refused the exec: {status.decode(errors='replace')}")
        stream = ExecStream(self, exec_id, tty, reader, writer)
        stream.ref, stream.pid_file = container, hangup_file
        return stream

    async def workspace(self, ref: str) -> WorkspaceInfo | None:
        try:
            info = await asyncio.to_thread(self.api.inspect_container, ref)
        except NotFound:
            return None
        running = bool(info["State"].get("Running"))
        address = next(
            (
                n["IPAddress"]
                for n in (info["NetworkSettings"].get("Networks") or {}).values()
                if n.get("IPAddress")
            ),
            None,
        )
        return WorkspaceInfo(
            info["Id"], dict(info["Config"].get("Labels") or {}), running, address if running else None
        )
