"""A per-client request limit with bounded memory (for the hub's login and sign-up forms)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any


class RateLimiter:
    """At most ``limit`` requests per ``window`` seconds for each key (a client address).

    Memory is bounded: at most ``max_keys`` keys are tracked (the least recently seen is
    forgotten first), each with at most ``limit`` timestamps. ``limit`` 0 switches it off.
    """

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        max_keys: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def hit(self, key: str) -> float | None:
        """Count one request of *key*; None when allowed, else seconds until one is."""
        if self.limit <= 0:
            return None
        now = self.clock()
        hits = self._hits.pop(key, None) or deque(maxlen=self.limit)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        self._hits[key] = hits
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)
        if len(hits) >= self.limit:
            return max(hits[0] + self.window - now, 1.0)
        hits.append(now)
        return None


def client_address(request: Any) -> str:
    """The client's address as the hub's proxy saw it, for per-client limits.

    configurable-http-proxy appends the address of its peer to ``X-Forwarded-For``; everything
    before that entry, and ``X-Real-Ip`` (which tornado would otherwise prefer), is whatever the
    client chose to send. Without the header (a request straight to the hub's own port), the
    connection's peer address.
    """
    forwarded = request.headers.get("X-Forwarded-For", "")
    last = forwarded.split(",")[-1].strip()
    if last:
        return str(last)
    context = getattr(request.connection, "context", None)
    address = getattr(context, "address", None)
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(request.remote_ip or "")
