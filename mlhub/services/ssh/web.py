"""The gateway's web side under /services/ssh/: the SSH page, the keys REST API, the setup script.

Browsers come with hub OAuth, scripts with a hub API token. Users manage their own keys;
admins see and revoke everyone's, and may add a key for a user they hand a workspace to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from jupyterhub.utils import url_path_join
from tornado import web

from mlhub.services.base import ServiceHandler, make_service_app
from mlhub.services.ssh.hub import GatewayHub, NoSuchUser
from mlhub.services.ssh.keystore import KeyError_, KeyExists, KeyStore
from mlhub.services.ssh.targets import (
    SEPARATOR,
    BadLoginName,
    Target,
    connection_info,
    parse_login,
    tunnel_info,
)
from mlhub.services.ssh.tunnel import TunnelHandler

log = logging.getLogger("mlhub.services.ssh")

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
)


class Context:
    """What every handler needs."""

    def __init__(
        self,
        keys: KeyStore,
        hub: GatewayHub,
        prefix: str,
        ssh_port: int,
        public_host: str,
        public_url: str = "",
        tunnel_upstream: tuple[str, int] = ("127.0.0.1", 2222),
        service_name: str = "ssh",
    ):
        self.keys = keys
        self.hub = hub
        self.prefix = prefix
        self.ssh_port = ssh_port
        self.public_host = public_host
        #: the hub's public URL (MLHUB_PUBLIC_URL): links and the setup script use its scheme
        self.public_url = public_url
        #: where WebSocket tunnels go: the gateway's own SSH port
        self.tunnel_upstream = tunnel_upstream
        self.service_name = service_name


def page_base(ctx: Context, request: Any) -> str:
    """``scheme://host[:port]`` of the hub as people reach it: the configured public URL (so an
    HTTPS hub behind a TLS proxy hands out https:// links), else what this request came by."""
    return ctx.public_url or f"{request.protocol}://{request.host}"


def ssh_host(ctx: Context, request_host: str) -> str:
    """The host users type after '@': configured, else the host they reached the hub by."""
    if ctx.public_host:
        return ctx.public_host
    host = request_host.rsplit(":", 1)[0] if request_host.count(":") == 1 else request_host
    return host.strip("[]") or "localhost"


class BaseHandler(ServiceHandler):
    login_needed = "log in to the hub (or send a hub API token of a user)"
    users_only = True
    redirect_on_get_only = True

    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def is_admin(self) -> bool:
        return bool(self.current_user and self.current_user.get("admin"))

    def subject_user(self) -> str:
        """Whose keys: yourself, or (admins only) ``?user=``."""
        user = self.get_argument("user", "") or self.current_user["name"]
        if user != self.current_user["name"] and not self.is_admin:
            raise web.HTTPError(403, "only admins manage other users' keys")
        return user


class KeysHandler(BaseHandler):
    """GET: list keys (admins: ``?user=`` or ``?all=1``). POST ``{"key", "title"?, "user"?}``: add."""

    @web.authenticated
    async def get(self) -> None:
        if self.get_argument("all", "") and self.is_admin:
            keys = await asyncio.to_thread(self.ctx.keys.list)
        else:
            keys = await asyncio.to_thread(self.ctx.keys.list, self.subject_user())
        self.write_json({"keys": [key.to_json() for key in keys]})

    @web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(
                400, 'body: must be JSON like {"key": "ssh-ed25519 AAAA... me@laptop"}'
            ) from None
        if not isinstance(body, dict) or set(body) - {"key", "title", "user"}:
            raise web.HTTPError(400, "body: allowed fields are key, title and (admins) user")
        if not isinstance(body.get("key"), str) or not isinstance(body.get("title", ""), str):
            raise web.HTTPError(400, "key and title: must be strings")
        user = body.get("user") or self.current_user["name"]
        if user != self.current_user["name"]:
            if not self.is_admin:
                raise web.HTTPError(403, "only admins add keys for other users")
            try:
                await self.ctx.hub.user_model(user)
            except NoSuchUser:
                raise web.HTTPError(400, f"user: there is no hub user {user!r}") from None
        try:
            key = await asyncio.to_thread(
                self.ctx.keys.add, user, body["key"], body.get("title", ""), self.current_user["name"]
            )
        except KeyExists as exc:
            raise web.HTTPError(409, str(exc)) from None
        except KeyError_ as exc:
            raise web.HTTPError(400, str(exc)) from None
        log.info("SSH key %s added for %s by %s", key.fingerprint, user, self.current_user["name"])
        self.write_json(key.to_json(), 201)


class KeyHandler(BaseHandler):
    """DELETE /api/keys/<id>: remove (revoke) a key of yours, or any key as an admin."""

    @web.authenticated
    async def delete(self, key_id: str) -> None:
        key = await asyncio.to_thread(self.ctx.keys.get, int(key_id))
        if key is None or (key.user != self.current_user["name"] and not self.is_admin):
            raise web.HTTPError(404, f"no key {key_id} of yours")
        await asyncio.to_thread(self.ctx.keys.delete, key.id)
        log.info("SSH key %s of %s removed by %s", key.fingerprint, key.user, self.current_user["name"])
        self.set_status(204)
        self.finish()


class PageHandler(BaseHandler):
    """The SSH page: how to connect to each workspace, and the keys."""

    @web.authenticated
    async def get(self) -> None:
        user = self.subject_user()
        try:
            model = await self.ctx.hub.user_model(user)
        except NoSuchUser:
            raise web.HTTPError(404, f"there is no hub user {user!r}") from None
        host = ssh_host(self.ctx, self.request.host)
        servers = []
        for name, server in sorted((model.get("servers") or {}).items()):
            info = connection_info(Target(user, name), host, self.ctx.ssh_port)
            info.update(tunnel_info(Target(user, name), page_base(self.ctx, self.request), self.ctx.prefix))
            setup = (
                page_base(self.ctx, self.request)
                + url_path_join(self.ctx.prefix, "setup.sh")
                + "?login="
                + quote(info["login"], safe="")
            )
            info["setup"] = f"curl -fsSL {shlex.quote(setup)} | sh"
            info["tunnel_setup"] = f"curl -fsSL {shlex.quote(setup + '&via=tunnel')} | sh"
            servers.append({"name": name or "(default)", "ready": bool(server.get("ready")), **info})
        if not servers:
            info = connection_info(Target(user, ""), host, self.ctx.ssh_port)
            info.update(tunnel_info(Target(user, ""), page_base(self.ctx, self.request), self.ctx.prefix))
            servers.append({"name": "(default)", "ready": False, **info, "setup": "", "tunnel_setup": ""})
        keys = await asyncio.to_thread(self.ctx.keys.list, user)
        all_keys = await asyncio.to_thread(self.ctx.keys.list) if self.is_admin else []
        html = _templates.get_template("ssh.html").render(
            user=user,
            me=self.current_user["name"],
            is_admin=self.is_admin,
            servers=servers,
            keys=keys,
            all_keys=all_keys,
            prefix=self.ctx.prefix,
            xsrf_token=self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token,
            hub_prefix="/hub/",
            separator=SEPARATOR,
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(html)


SETUP_SCRIPT = """#!/bin/sh
# MLHub: set up `ssh {alias}` for {login} on {where}.
set -e
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
KEY="$HOME/.ssh/mlhub_ed25519"
if [ ! -f "$KEY" ]; then
    ssh-keygen -q -t ed25519 -N "" -C "mlhub $(whoami)@$(hostname)" -f "$KEY"
    echo "Created the key $KEY"
fi
CONFIG="$HOME/.ssh/config"
touch "$CONFIG" && chmod 600 "$CONFIG"
if grep -q "^Host {alias}\\$" "$CONFIG"; then
    echo "$CONFIG already has Host {alias}; left as it is"
else
    printf '\\nHost {alias}\\n{host_lines}    User {login}\\n    IdentityFile %s\\n' "$KEY" >> "$CONFIG"
    echo "Added Host {alias} to $CONFIG"
fi
echo
echo "Now add this public key on the hub's SSH page ({page}):"
echo
cat "$KEY.pub"
echo
echo "Then connect with:  ssh {alias}"{tunnel_hint}
"""

TUNNEL_HINT = """
echo "(through the hub's HTTPS: mlhub-ssh-tunnel comes with the mlhub Python package; it reads a hub"
echo " API token of yours, from the hub's Token page, from MLHUB_API_TOKEN or --token-file)"
"""


class SetupScriptHandler(web.RequestHandler):
    """GET /setup.sh?login=<user>[/<server>]: a shell script that sets up ``ssh mlhub-...``.

    It holds no secret (host, port, login name), so it needs no login: ``curl ... | sh``.
    """

    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        reason = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {reason}\n")

    def get(self) -> None:
        try:
            target = parse_login(self.get_argument("login", ""))
        except BadLoginName as exc:
            raise web.HTTPError(400, f"login: {exc}") from None
        via = self.get_argument("via", "port")
        if via not in ("port", "tunnel"):
            raise web.HTTPError(
                400, "via: must be port (ssh to the gateway's port) or tunnel (through HTTPS)"
            )
        host = ssh_host(self.ctx, self.request.host)
        info = connection_info(target, host, self.ctx.ssh_port)
        base = page_base(self.ctx, self.request)
        tunnel = tunnel_info(target, base, self.ctx.prefix)
        for value in (info["login"], host):
            if not all(ch.isalnum() or ch in "._-,@+" for ch in value):
                raise web.HTTPError(400, "login: only letters, digits and ._-,@+ can go into a script")
        if not all(ch.isalnum() or ch in "._-:/[]" for ch in tunnel["tunnel_url"]):
            raise web.HTTPError(400, "the hub's URL has characters that cannot go into a script")
        if via == "tunnel":
            alias, where = tunnel["tunnel_alias"], tunnel["tunnel_url"]
            host_lines = f"    ProxyCommand mlhub-ssh-tunnel {tunnel['tunnel_url']}\\n"
        else:
            alias, where = info["alias"], f"{host}:{self.ctx.ssh_port}"
            host_lines = f"    HostName {host}\\n    Port {self.ctx.ssh_port}\\n"
        self.set_header("Content-Type", "text/x-shellscript; charset=utf-8")
        self.finish(
            SETUP_SCRIPT.format(
                alias=alias,
                login=info["login"],
                where=where,
                host_lines=host_lines,
                page=base + self.ctx.prefix,
                tunnel_hint=TUNNEL_HINT if via == "tunnel" else "",
            )
        )


def make_app(ctx: Context, cookie_secret: bytes | None = None) -> web.Application:
    prefix = ctx.prefix
    args = {"ctx": ctx}
    return make_service_app(
        prefix,
        [
            (url_path_join(prefix, "api/keys/?"), KeysHandler, args),
            (url_path_join(prefix, r"api/keys/(\d+)/?"), KeyHandler, args),
            (url_path_join(prefix, "setup.sh"), SetupScriptHandler, args),
            (url_path_join(prefix, "tunnel"), TunnelHandler, args),
            (prefix.rstrip("/") + "/?", PageHandler, args),
        ],
        cookie_secret,
    )
