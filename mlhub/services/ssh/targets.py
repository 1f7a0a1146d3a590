"""Which workspace an SSH login name means.

``alice`` is alice's default server; ``alice,gpu`` is her named server ``gpu``.

Why ``,``: it must never be part of a user or server name, and every SSH tool must pass it
through. JupyterHub 6 server names are lowercase letters, digits and single hyphens;
NativeAuthenticator refuses ``,`` in user names (so do e-mail addresses and the usual OAuth
providers' names). ``/`` is refused by JupyterHub too, but ``scp`` and ``rsync`` take any
argument with ``/`` before ``:`` for a local path, so ``alice/gpu@host:file`` cannot work;
``:`` and ``@`` are taken by the host syntax. See docs/decisions/ssh-login-names.md.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

SEPARATOR = ","
#: JupyterHub 6's rule for new server names (``jupyterhub.slugs.is_valid_safe_slug``).
SERVER_NAME = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*(?<!-)$")


class BadLoginName(ValueError):
    """The SSH login name does not name a workspace."""


@dataclass(frozen=True)
class Target:
    user: str
    server: str = ""  # "" = the default server

    @property
    def login(self) -> str:
        return f"{self.user}{SEPARATOR}{self.server}" if self.server else self.user

    def __str__(self) -> str:
        return f"{self.user}'s {'server ' + repr(self.server) if self.server else 'default server'}"


def _bad_chars(text: str) -> bool:
    return any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch == "/" for ch in text)


def parse_login(login: str) -> Target:
    """``user`` or ``user,server`` -> :class:`Target`; anything else raises :class:`BadLoginName`."""
    if not login or len(login) > 255 or _bad_chars(login):
        raise BadLoginName(f"log in as <hub user> or <hub user>{SEPARATOR}<server name>")
    user, sep, server = login.rpartition(SEPARATOR)
    if not sep:
        user, server = login, ""
    if not user:
        raise BadLoginName(f"the hub user name before '{SEPARATOR}' is missing")
    if sep and not server:
        raise BadLoginName(
            f"the server name after '{user}{SEPARATOR}' is missing (use just '{user}' for the default server)"
        )
    if server and (len(server) > 30 or not SERVER_NAME.match(server)):
        raise BadLoginName(
            f"{server!r} is not a server name: 1-30 lowercase letters, digits and single hyphens, starting with a letter"
        )
    # JupyterHub stores user names lower-case (its default normalization)
    return Target(user=user.lower(), server=server)


def connection_info(target: Target, host: str, port: int) -> dict[str, str]:
    """What to type to reach *target* through the gateway at *host*:*port* (shown on pages)."""
    alias = f"mlhub-{target.user}{'-' + target.server if target.server else ''}"
    login = target.login
    port_part = f"-p {port} " if port != 22 else ""
    return {
        "login": login,
        "alias": alias,
        "command": f"ssh {port_part}{shlex.quote(login)}@{host}",
        "scp": f"scp -P {port} ./data.csv {shlex.quote(login)}@{host}:",
        "tunnel": f"ssh {port_part}-N -L 5000:localhost:5000 {shlex.quote(login)}@{host}",
        "config": f"Host {alias}\n    HostName {host}\n    Port {port}\n    User {login}\n",
    }


def tunnel_info(target: Target, hub_url: str, prefix: str) -> dict[str, str]:
    """The same through the WebSocket tunnel (only HTTP(S) reaches the hub): ssh's
    ProxyCommand runs ``mlhub-ssh-tunnel`` with the hub's URL; the host name after '@' is then
    only a name for known_hosts."""
    alias = f"mlhub-{target.user}{'-' + target.server if target.server else ''}-tunnel"
    url = hub_url.rstrip("/") + prefix.rstrip("/") + "/tunnel"
    proxy = f"mlhub-ssh-tunnel {url}"
    login = shlex.quote(target.login)
    return {
        "tunnel_alias": alias,
        "tunnel_url": url,
        "tunnel_command": f"ssh -o ProxyCommand={shlex.quote(proxy)} {login}@{alias}",
        "tunnel_config": f"Host {alias}\n    User {target.login}\n    ProxyCommand {proxy}\n",
    }
