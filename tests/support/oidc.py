"""A real OpenID Connect provider for login tests: ``oidc-provider-mock`` (PyPI; authlib's
authorization server behind a login form where the tester names the subject) in its own
process on a free loopback port. Clients must register (their redirect URI is checked);
users and their claims are set through its ``PUT /users/<sub>``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from devtools.hubprocess import free_port, stop_process_group
from tests.support.web import new_session


@dataclass
class OIDCProvider:
    issuer: str
    log_path: Path

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """A client allowed to use *redirect_uri* only; returns (client id, client secret)."""
        reply = requests.post(
            f"{self.issuer}/oauth2/clients",
            json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_post"},
            timeout=30,
        )
        assert reply.status_code == 201, reply.text
        return reply.json()["client_id"], reply.json()["client_secret"]

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        reply = requests.put(f"{self.issuer}/users/{quote(sub, safe='')}", json=claims, timeout=30)
        assert reply.status_code == 204, reply.text

    def login(self, hub_url: str, sub: str) -> tuple[requests.Session, requests.Response]:
        """Log in as a browser does: the hub sends us to the provider, whose form (the subject
        named by the tester) sends us back to the hub's callback. Returns the callback's reply."""
        session = new_session()
        start = session.get(
            f"{hub_url}/hub/oauth_login?next=%2Fhub%2Fhome", allow_redirects=False, timeout=30
        )
        assert start.status_code == 302, start.text
        authorize = start.headers["Location"]
        assert authorize.startswith(f"{self.issuer}/oauth2/authorize?"), authorize
        form = session.get(authorize, timeout=30)
        assert form.status_code == 200 and 'name="sub"' in form.text
        back = session.post(authorize, data={"sub": sub}, allow_redirects=False, timeout=30)
        assert back.status_code == 302, back.text
        callback = back.headers["Location"]
        # the callback is on the hub's own host (per-user origins keep /hub there)
        assert callback.startswith(f"{hub_url}/hub/oauth_callback?code="), callback
        return session, session.get(callback, allow_redirects=False, timeout=30)


@contextmanager
def running_oidc_provider(workdir: Path, host: str = "127.0.0.1") -> Iterator[OIDCProvider]:
    """The provider on *host* (loopback by default; the engine's bridge gateway for a hub in a
    container, which must reach the same issuer URL as the browser)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "oidc-provider.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oidc_provider_mock",
            "--host",
            host,
            "--port",
            str(port),
            "--require-registration",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
        start_new_session=True,
    )
    provider = OIDCProvider(f"http://{host}:{port}", log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"oidc-provider-mock exited with {proc.returncode}:\n{log_path.read_text()}"
                )
            try:
                if requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"oidc-provider-mock did not answer:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield provider
    finally:
        stop_process_group(proc)
        log.close()
