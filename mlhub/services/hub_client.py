"""A small async client for the hub's REST API, used by MLHub's services with their tokens."""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


def listen_address(host: str | None) -> str:
    """Where a service listens, given the host of its URL: that address when it is an IP,
    all interfaces when it is a name (a Kubernetes Service in front of the hub pod)."""
    import ipaddress

    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return ""
    return host or ""


class HubAPIError(RuntimeError):
    """The hub answered with an error (or not at all)."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class HubClient:
    def __init__(self, api_url: str, token: str, timeout: float = 30):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.http = AsyncHTTPClient()

    async def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """``(status, parsed JSON or None)``; raises :class:`HubAPIError` on 4xx/5xx or no answer."""
        request = HTTPRequest(
            self.api_url + path,
            method=method,
            headers={"Authorization": f"token {token or self.token}", "Content-Type": "application/json"},
            body=None if body is None and method != "DELETE" else json.dumps(body or {}),
            allow_nonstandard_methods=True,
            request_timeout=self.timeout,
        )
        try:
            response = await self.http.fetch(request)
        except HTTPClientError as exc:
            detail = exc.response.body.decode(errors="replace")[:300] if exc.response else str(exc)
            raise HubAPIError(f"{method} {path}: {exc.code} {detail}", exc.code) from None
        except OSError as exc:
            raise HubAPIError(f"{method} {path}: hub unreachable ({exc})") from None
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)
