"""Who gets in where: every route MLHub adds or changes, for every kind of caller.

Callers: anonymous, the owner (alice), another user (bob), an admin, and a service whose
token has one narrow scope (``read:users:name``). One real hub, one real running workspace
(the bundled image, with a test web server inside for ``/proxy/<port>/``). Statuses are
checked exactly where they are the contract, and as "denied" (302 to the login page, 403 or
404) where JupyterHub may choose between them.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.images import WORKSPACE_IMAGE
from tests.support.web import login

NARROW_TOKEN = secrets.token_hex(16)
DENIED = "denied"
CALLERS = ("anonymous", "alice", "bob", "admin", "narrow-service")


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    expect: dict[str, Any]  # caller -> status code, set of codes, or DENIED
    json: Any = None
    form: dict[str, str] | None = None
    page: bool = False  # a hub page: browsers' login cookie (JupyterHub pages do not take tokens)
    tool: bool = False  # a tool in the workspace: it may redirect inside itself (never to the login)


def _routes(port: int) -> list[Route]:
    allowed_only = lambda *who, code=200: {c: (code if c in who else DENIED) for c in CALLERS}  # noqa: E731
    return [
        # spawning with options: the owner and admins reach the validator (400 for this body)
        Route(
            "spawn with options",
            "POST",
            "/hub/api/users/alice/servers/probe",
            allowed_only("alice", "admin", code=400),
            json={"cpu_limit": -1},
        ),
        Route(
            "options form for alice's new server",
            "GET",
            "/hub/spawn/alice/probe2",
            allowed_only("alice", "admin"),
            page=True,
        ),
        # MLHub's admin pages
        Route("Workspaces page", "GET", "/hub/workspaces", allowed_only("admin"), page=True),
        Route(
            "create a user",
            "POST",
            "/hub/workspaces/users",
            allowed_only("admin", code=302),
            form={"name": "made-by-{caller}", "password": "long-enough-pw"},
            page=True,
        ),
        # cleanup service: admins only
        Route("cleanup status", "GET", "/services/cleanup-service/status", allowed_only("admin")),
        Route(
            "cleanup of deleted users (dry run)",
            "GET",
            "/services/cleanup-service/users?dry_run=1",
            allowed_only("admin"),
        ),
        Route(
            "cleanup of expired servers (dry run)",
            "GET",
            "/services/cleanup-service/expired?dry_run=1",
            allowed_only("admin"),
        ),
        # SSH keys: your own; admins anyone's
        Route("own SSH keys", "GET", "/services/ssh/api/keys", allowed_only("alice", "bob", "admin")),
        Route("alice's SSH keys", "GET", "/services/ssh/api/keys?user=alice", allowed_only("alice", "admin")),
        Route(
            "every SSH key", "GET", "/services/ssh/api/keys?all=1&user=alice", allowed_only("alice", "admin")
        ),
        Route(
            "add a key for alice",
            "POST",
            "/services/ssh/api/keys",
            allowed_only("alice", "admin", code=400),
            json={"user": "alice", "key": "not a key"},
        ),
        Route(
            "alice's SSH connection page", "GET", "/services/ssh/?user=alice", allowed_only("alice", "admin")
        ),
        # the workspace: server API, tools, any port
        Route("alice's server API", "GET", "/user/alice/ws/api/status", allowed_only("alice", "admin")),
        Route(
            "alice's VS Code",
            "GET",
            "/user/alice/ws/tools/vscode/",
            allowed_only("alice", "admin"),
            tool=True,
        ),
        Route(
            "alice's TensorBoard",
            "GET",
            "/user/alice/ws/tools/tensorboard/",
            allowed_only("alice", "admin"),
            tool=True,
        ),
        Route(
            "a port in alice's workspace",
            "GET",
            f"/user/alice/ws/proxy/{port}/",
            allowed_only("alice", "admin"),
            tool=True,
        ),
    ]


@pytest.fixture(scope="module")
def authz_hub(hub_factory, docker_client):
    hub = hub_factory(
        env={"MLHUB_ADMIN_PASSWORD": "initial-Admin-pw", "MLHUB_WORKSPACE_IMAGE": WORKSPACE_IMAGE},
        extra_config=f"""
c.JupyterHub.services.append({{"name": "narrow", "api_token": "{NARROW_TOKEN}"}})
c.JupyterHub.load_roles.append({{"name": "narrow", "scopes": ["read:users:name"], "services": ["narrow"]}})
""",
    )
    sessions = {"anonymous": requests.Session(), "admin": login(hub.url, "admin", "initial-Admin-pw")}
    for name in ("alice", "bob"):  # users with passwords, made on the Workspaces page
        xsrf = sessions["admin"].cookies.get("_xsrf", path="/hub/")
        r = sessions["admin"].post(
            f"{hub.url}/hub/workspaces/users",
            data={"name": name, "password": f"{name}-Secret-42", "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 302 and "created=" in r.headers["Location"], (
            r.status_code,
            r.headers.get("Location"),
        )
        sessions[name] = login(hub.url, name, f"{name}-Secret-42")
    tokens = {name: hub.ensure_user(name) for name in ("alice", "bob", "admin")}
    tokens["narrow-service"] = NARROW_TOKEN
    r = hub.spawn("alice", "ws", {"image": WORKSPACE_IMAGE}, token=tokens["alice"])
    assert r.status_code in (201, 202), r.text
    container = docker_client.containers.get(hub.server("alice", "ws")["state"]["object_id"])
    port = 8766
    container.exec_run(
        ["sh", "-c", f"cd /tmp && nohup python3 -m http.server {port} >/dev/null 2>&1 &"], detach=True
    )
    hub.tokens = tokens
    hub.sessions = sessions
    hub.probe_port = port
    hub.container = container
    return hub


def _call(hub, route: Route, caller: str) -> requests.Response:
    headers = {"Accept": "text/html"} if route.method == "GET" else {}
    http: Any = requests
    form = {k: v.format(caller=caller) for k, v in route.form.items()} if route.form else None
    if route.page and caller in hub.sessions:
        http = hub.sessions[caller]
        form = {**(form or {}), "_xsrf": http.cookies.get("_xsrf", path="/hub/") or ""}
    elif caller != "anonymous":
        headers["Authorization"] = f"token {hub.tokens[caller]}"
    deadline = time.monotonic() + 90
    while True:
        r = http.request(
            route.method,
            hub.at(route.path),
            headers=headers,
            json=route.json,
            data=form,
            allow_redirects=False,
            timeout=60,
        )
        # tools and the test server may take a moment to start: retry gateway errors
        if r.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return r
        time.sleep(1)


def _ed25519_public_key(comment: str) -> str:
    private = Ed25519PrivateKey.generate()
    blob = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{blob.decode()} {comment}@test"


def _to_login(r: requests.Response) -> bool:
    location = r.headers.get("Location", "")
    return r.status_code == 302 and ("/hub/login" in location or "/hub/api/oauth2/authorize" in location)


def _is_denied(r: requests.Response) -> bool:
    return _to_login(r) or r.status_code in (401, 403, 404)


def _is_allowed(r: requests.Response, want: int, route: Route) -> bool:
    # a tool may redirect inside itself (code-server: to ./?folder=...), never to the login
    return r.status_code == want or (
        route.tool and want == 200 and r.status_code in (301, 302) and not _to_login(r)
    )


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(authz_hub, caller):
    wrong = []
    for route in _routes(authz_hub.probe_port):
        want = route.expect[caller]
        r = _call(authz_hub, route, caller)
        ok = _is_denied(r) if want == DENIED else _is_allowed(r, want, route)
        if not ok:
            wrong.append(f"{route.name}: {route.method} {route.path} -> {r.status_code} (want {want})")
    assert not wrong, f"{caller}:\n" + "\n".join(wrong)


def test_refused_callers_changed_nothing(authz_hub):
    """After the matrix: each caller tried to create its own user; only the admin's exists."""
    for caller in CALLERS:
        r = authz_hub.api("GET", f"/users/made-by-{caller}")
        assert r.status_code == (200 if caller == "admin" else 404), (caller, r.status_code)


def test_ssh_key_listings_show_only_what_the_caller_may_see(authz_hub):
    """?all=1 lists every user's keys for an admin; for anyone else it is their own list."""
    keys = {}
    for name in ("alice", "bob"):
        public = _ed25519_public_key(name)
        r = requests.post(
            f"{authz_hub.url}/services/ssh/api/keys",
            headers={"Authorization": f"token {authz_hub.tokens[name]}"},
            json={"key": public},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        keys[name] = r.json()["fingerprint"]

    def listed(caller: str, query: str) -> set[str]:
        r = requests.get(
            f"{authz_hub.url}/services/ssh/api/keys{query}",
            headers={"Authorization": f"token {authz_hub.tokens[caller]}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return {key["fingerprint"] for key in r.json()["keys"]}

    assert listed("alice", "?all=1") == {keys["alice"]}
    assert listed("bob", "?all=1") == {keys["bob"]}
    assert {keys["alice"], keys["bob"]} <= listed("admin", "?all=1")
    assert listed("admin", "?user=bob") == {keys["bob"]}
