"""The Docker engine adapter: one docker-py client set-up (:func:`docker_client`), this hub's
labelled containers, volumes and networks listed and removed (the cleanup service), processes
inside workspace containers through the engine's exec API (the SSH gateway).

docker-py is blocking, so every call runs in a thread (never on the event loop). Creating, inspecting and resizing an exec go through docker-py (in a thread); the exec's
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import docker
from docker.errors import APIError, NotFound

from mlhub.core.labels import ORIGIN
from mlhub.engines.base import (
    STDERR,
    STDOUT,
    Engine,
    ExecError,
    ProcessStream,
    Resource,
    WorkspaceInfo,
    WriterSide,
    with_pid_file,
)
from mlhub.engines.workspace_disk import disk_of_volume

__all__ = ["STDERR", "STDOUT", "DockerEngine", "ExecError", "ExecStream", "docker_client"]

log = logging.getLogger("mlhub.engines.docker")

#: container states in which it runs, or is about to
ACTIVE_STATES = {"created", "running", "restarting"}


def docker_client(environ: Mapping[str, str] | None = None, timeout: int = 60) -> docker.DockerClient:
    """A docker-py client for the engine in *environ* (``DOCKER_HOST`` ..., default: this
    process's environment, else the local socket)."""
    return docker.from_env(timeout=timeout, environment=dict(os.environ if environ is None else environ))


class ExecStream(WriterSide, ProcessStream):
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

    async def still_running(self) -> bool:
        try:
            info = await asyncio.to_thread(self.engine.api.exec_inspect, self.exec_id)
        except APIError:
            return False
        return bool(info.get("Running"))


class DockerEngine(Engine):
    """Workspaces as containers on a Docker engine (``DOCKER_HOST`` or the local socket)."""

    def __init__(self, environ: Mapping[str, str] | None = None, client: docker.DockerClient | None = None):
        environ = os.environ if environ is None else environ
        self.client = client or docker_client(environ)
        self.api = self.client.api
        self.host = environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.address = urlparse(self.host)

    def check_exec(self) -> None:
        """Raise ValueError unless processes can be started here (exec streams need a
        unix:// or tcp:// engine)."""
        if self.address.scheme not in ("unix", "tcp", "http"):
            raise ValueError(
                f"DOCKER_HOST: the SSH gateway supports unix:// and tcp:// engines (got {self.host!r})"
            )

    async def _run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: func(*args, **kwargs))

    async def list_resources(self, hub_name: str) -> list[Resource]:
        api = self.api
        flt = {"label": [f"{ORIGIN}={hub_name}"]}
        containers = await self._run(api.containers, all=True, filters=flt)
        volumes = (await self._run(api.volumes, filters=flt)).get("Volumes") or []
        networks = await self._run(api.networks, filters=flt)
        resources = [
            Resource(
                "container",
                c["Names"][0].lstrip("/"),
                c["Id"],
                c.get("Labels") or {},
                created=float(c.get("Created") or 0),
                active=c.get("State") in ACTIVE_STATES,
            )
            for c in containers
        ]
        resources += [
            Resource("volume", v["Name"], v["Name"], v.get("Labels") or {}, options=v.get("Options") or {})
            for v in volumes
        ]
        resources += [Resource("network", n["Name"], n["Id"], n.get("Labels") or {}) for n in networks]
        return resources

    async def remove(self, resource: Resource) -> None:
        """Remove one resource; one that is already gone counts as removed."""
        api = self.api
        try:
            if resource.kind == "container":
                await self._run(api.remove_container, resource.id, force=True, v=True)
            elif resource.kind == "volume":
                await self._run(api.remove_volume, resource.name)
                disk = disk_of_volume({"Name": resource.name, "Options": resource.options})
                if disk is not None:  # a capped /workspace: its disk image goes with it
                    await self._run(disk.remove)
            elif resource.kind == "network":
                await self._remove_network(resource.id)
            else:
                raise ValueError(f"unknown resource kind {resource.kind}")
        except NotFound:
            return
        except APIError as exc:
            raise RuntimeError(f"{resource.kind} {resource.name}: {exc.explanation or exc}") from None

    async def _remove_network(self, network: str) -> None:
        """Remove a network; containers still attached (e.g. the hub's own, to reach the
        workspaces) are disconnected first. One engine call when none is attached."""
        api = self.api
        try:
            await self._run(api.remove_network, network)
            return
        except APIError as exc:
            if "active endpoints" not in str(exc.explanation or exc):
                raise
        found = await self._run(api.inspect_network, network)
        for cid in found.get("Containers") or {}:
            await self._run(api.disconnect_container_from_network, cid, network, force=True)
        await self._run(api.remove_network, network)

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
        self.check_exec()
        reader, writer = await self._connect()
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        writer.write(
            (
                f"POST /v{self.api.api_version}/exec/{exec_id}/start HTTP/1.1\r\n"
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
