"""Resolve ``localhost`` and ``*.localhost`` (and ``*.mlhub.test``) to 127.0.0.1 in the test
process, as browsers do for the first two.

Per-user origins put each user's workspaces on ``<user>.localhost``; Chromium resolves those
names to loopback by itself, glibc does not. Only these reserved names are mapped; everything
else resolves as usual.
"""

from __future__ import annotations

import socket
from typing import Any

_real_getaddrinfo = socket.getaddrinfo


#: Reserved test domain (RFC 6761) for hubs that need a host name other than localhost, as in a
#: real deployment; Chromium is told the same with --host-resolver-rules.
TEST_DOMAIN = "mlhub.test"


def is_loopback_name(host: object) -> bool:
    return isinstance(host, str) and (
        host in ("localhost", TEST_DOMAIN) or host.endswith((".localhost", "." + TEST_DOMAIN))
    )


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if is_loopback_name(host):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.getaddrinfo = _getaddrinfo
