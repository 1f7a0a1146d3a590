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


@contextmanager
def running_oidc_provider(workdir: Path) -> Iterator[OIDCProvider]:
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
            "127.0.0.1",
            "--port",
            str(port),
            "--require-registration",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
        start_new_session=True,
    )
    provider = OIDCProvider(f"http://127.0.0.1:{port}", log_path)
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
