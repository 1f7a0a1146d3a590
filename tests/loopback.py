"""Resolve ``localhost`` and ``*.localhost`` to 127.0.0.1 in the test process, as browsers do.

Per-user origins put each user's workspaces on ``<user>.localhost``; Chromium resolves those
names to loopback by itself, glibc does not. Only these reserved names are mapped; everything
else resolves as usual.
"""

from __future__ import annotations

import socket
from typing import Any

_real_getaddrinfo = socket.getaddrinfo


def is_loopback_name(host: object) -> bool:
    return isinstance(host, str) and (host == "localhost" or host.endswith(".localhost"))


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if is_loopback_name(host):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.getaddrinfo = _getaddrinfo
