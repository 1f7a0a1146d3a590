"""The SSH side of the gateway: who may log in, and what their channels run in which workspace.

Every connection authenticates as ``<hub user>`` or ``<hub user>/<server>``: with a public key
that user registered in the hub, or (if enabled) with one of their hub API tokens as the
password. Sessions and tunnels then go into that workspace's container, never anywhere else:
the gateway has no shell of its own to offer.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import asyncssh

from mlhub.core import labels
from mlhub.engines.base import STDERR, Engine, ExecError
from mlhub.services.ssh.activity import ActivityReporter
from mlhub.services.ssh.hub import GatewayHub, NoSuchUser, Workspace, token_grants_access
from mlhub.services.ssh.keystore import KeyStore
from mlhub.services.ssh.session import TCPPipe, TCPSession, UserFacingError, WorkspaceSession
from mlhub.services.ssh.targets import BadLoginName, Target, parse_login
from mlhub.services.ssh.workspace_commands import (
    INJECTED_SFTP,
    SFTP_SERVER_PATHS,
    exec_command,
    find_sftp_server_command,
    relay_command,
    shell_command,
)

log = logging.getLogger("mlhub.services.ssh")

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "")
#: Client environment passed into sessions (what sshd's default AcceptEnv lets through).
ACCEPTED_ENV_PREFIXES = ("LANG", "LC_")


class Gateway:
    """State shared by all connections: the hub, the key store, the engine."""

    def __init__(
        self,
        hub: GatewayHub,
        keys: KeyStore,
        engine: Engine,
        hub_name: str,
        token_auth: bool,
        keys_page_url: str,
        activity_interval: float = 300,
    ):
        self.hub = hub
        self.activity = ActivityReporter(hub, activity_interval)
        self.keys = keys
        self.engine = engine
        self.hub_name = hub_name
        self.token_auth = token_auth
        self.keys_page_url = keys_page_url
        self._sftp_paths: dict[str, str] = {}
        self._addresses: dict[str, str | None] = {}

    def server_factory(self) -> GatewayServer:
        return GatewayServer(self)

    async def container_for(self, target: Target) -> str:
        """The running container of *target*, checked against its labels; else a clear refusal."""
        try:
            workspace: Workspace | None = await self.hub.workspace(target)
        except NoSuchUser:
            raise UserFacingError(f"there is no hub user {target.user!r}") from None
        if workspace is None:
            hint = (
                ""
                if not target.server
                else f" (create it on the hub's home page, or log in as '{target.user}')"
            )
            raise UserFacingError(f"{target} does not exist{hint}")
        if not workspace.ready:
            doing = f" (it is {workspace.pending})" if workspace.pending else ""
            raise UserFacingError(
                f"{target} is not running{doing}; start it on the hub's home page, then connect again"
            )
        info = await self.engine.workspace(workspace.object_ref) if workspace.object_ref else None
        found = info.metadata if info else {}
        if not info or found.get(labels.USER) != target.user or found.get(labels.ORIGIN) != self.hub_name:
            log.warning(
                "Refusing %s: %r is not the workspace of that user on this hub",
                target.login,
                workspace.object_ref,
            )
            raise UserFacingError(f"{target} has no workspace this gateway can reach")
        if not info.running:
            raise UserFacingError(
                f"{target} is not running; start it on the hub's home page, then connect again"
            )
        self._addresses[info.ref] = info.address
        return info.ref

    async def sftp_command(self, container: str) -> list[str]:
        """The workspace's sftp-server, or the gateway's own copied in (images without one)."""
        if container in self._sftp_paths:
            return [self._sftp_paths[container]]
        status, out, _ = await self.engine.run(container, find_sftp_server_command())
        path = out.decode().strip() if status == 0 else ""
        if not path:
            local = next((p for p in SFTP_SERVER_PATHS if _readable(p)), None)
            if local is None:
                raise UserFacingError(
                    "this workspace image has no sftp-server (install openssh-sftp-server) "
                    "and the gateway has none to lend; 'scp -O' still works if the image has scp"
                )
            with open(local, "rb") as fh:
                await self.engine.put_file(container, INJECTED_SFTP, fh.read())
            path = INJECTED_SFTP
            log.info("Copied sftp-server into container %s (its image has none)", container[:12])
        self._sftp_paths[container] = path
        return [path]

    async def start_process(
        self,
        target: Target,
        kind: str,
        command: str,
        term: str,
        size: tuple[int, int],
        client_env: dict[str, str],
    ):
        container = await self.container_for(target)
        env = {k: v for k, v in client_env.items() if k.startswith(ACCEPTED_ENV_PREFIXES)}
        tty = bool(term)
        if tty:
            env["TERM"] = term
        if kind == "sftp":
            cmd, tty = await self.sftp_command(container), False
        elif kind == "exec":
            cmd = exec_command(command)
        else:
            cmd = shell_command()
        try:
            stream = await self.engine.start(
                container, cmd, tty=tty, env=env, hangup_file=f"/tmp/.mlhub-ssh-{secrets.token_hex(8)}.pid"
            )
        except ExecError as exc:
            raise UserFacingError(f"cannot run in {target}: {exc}") from None
        if tty:
            await stream.resize(*size)
        log.info(
            "%s for %s in container %s",
            kind if kind != "exec" else f"exec {command[:60]!r}",
            target.login,
            container[:12],
        )
        return stream

    async def open_port(self, target: Target, host: str, port: int):
        """A pipe to *port* inside the workspace: straight to its address, else via a relay."""
        try:
            container = await self.container_for(target)
        except UserFacingError as exc:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, f"MLHub: {exc}") from None
        address = self._addresses.get(container)
        if address:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 5)
                log.info("Tunnel for %s to port %d in container %s", target.login, port, container[:12])
                return TCPPipe(reader, writer)
            except (OSError, asyncio.TimeoutError):
                pass  # maybe listening on 127.0.0.1 only: relay from inside
        stream = await self.engine.start(container, relay_command(port))
        kind, first = await stream.read()
        if kind != STDERR or first.strip() != b"ok":
            stream.close()
            reason = first.decode(errors="replace").strip() or "no answer"
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_CONNECT_FAILED, f"MLHub: nothing answers on port {port} in {target} ({reason})"
            )
        log.info("Tunnel (relayed) for %s to port %d in container %s", target.login, port, container[:12])
        return stream


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


class GatewayServer(asyncssh.SSHServer):
    """One client connection: authentication, then its sessions and tunnels."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.conn: Any = None
        self.target: Target | None = None
        self.peer = "?"
        self._told_keys = False

    def connection_made(self, conn: Any) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?",)
        self.peer = str(peer[0])

    def _banner(self, text: str) -> None:
        try:
            self.conn.send_auth_banner(f"MLHub: {text}\r\n")
        except OSError:
            pass

    def begin_auth(self, username: str) -> bool:
        try:
            self.target = parse_login(username)
        except BadLoginName as exc:
            self.target = None
            log.info("SSH login %r from %s refused: %s", username[:80], self.peer, exc)
            self._banner(f"{username[:80]!r} is not a workspace login: {exc}")
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self.target is None:
            return False
        found = await asyncio.to_thread(self.gateway.keys.find, self.target.user, key)
        if found is None:
            if not self._told_keys:
                self._told_keys = True
                log.info(
                    "SSH key %s from %s is not registered for %s",
                    key.get_fingerprint(),
                    self.peer,
                    self.target.user,
                )
                self._banner(
                    f"key {key.get_fingerprint()} is not registered for hub user {self.target.user!r}. "
                    f"Add your public key at {self.gateway.keys_page_url}"
                )
            return False
        return True

    def password_auth_supported(self) -> bool:
        return self.gateway.token_auth

    async def validate_password(self, username: str, password: str) -> bool:
        if self.target is None or not password:
            return False
        model = await self.gateway.hub.token_owner(password)
        if model is None or not token_grants_access(model, self.target):
            log.info("SSH token login as %s from %s refused", self.target.login, self.peer)
            self._banner(f"that is not a hub API token of {self.target.user!r} with access to {self.target}")
            return False
        return True

    def auth_completed(self) -> None:
        log.info("SSH login as %s from %s", self.target.login if self.target else "?", self.peer)

    def session_requested(self):
        target = self.target

        async def start(kind: str, command: str, term: str, size: tuple[int, int], env: dict[str, str]):
            return await self.gateway.start_process(target, kind, command, term, size, env)

        session = WorkspaceSession(start, target.login, self.gateway.activity.session(target))
        return self.conn.create_server_channel(encoding=None), session

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int):
        target = self.target
        if dest_host.lower() not in LOCAL_NAMES:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"MLHub: tunnels go to ports inside your workspace only: use localhost:{dest_port}",
            )

        async def open_tunnel():
            pipe = await self.gateway.open_port(target, dest_host, dest_port)
            return TCPSession(pipe, target.login, self.gateway.activity.session(target))

        return self.conn.create_tcp_channel(encoding=None), open_tunnel()

    def server_requested(self, listen_host: str, listen_port: int):
        log.info("Refused remote forwarding (-R) for %s", self.target.login if self.target else "?")
        return False
