"""Using a hub's pages like a browser does: sign up, log in (NativeAuthenticator forms + XSRF)."""

from __future__ import annotations

import re
from http.cookiejar import DefaultCookiePolicy

import requests


class BrowserCookiePolicy(DefaultCookiePolicy):
    """Cookies as browsers keep them for ``localhost``: with per-user origins the hub sets its
    session cookie with ``Domain=localhost``, which Chromium keeps as a cookie of that one host
    (``localhost`` is a reserved top-level name) and Python's cookie jar refuses. Requests
    copies the session's cookies into a jar with the default policy for every request, so
    the cookie is stored host-only here rather than checked specially on the way out."""

    def set_ok_domain(self, cookie, request) -> bool:  # type: ignore[no-untyped-def]
        if cookie.domain.lstrip(".") == "localhost" and request.host.split(":")[0] == "localhost":
            cookie.domain, cookie.domain_specified, cookie.domain_initial_dot = (
                "localhost.local",
                False,
                False,
            )
            return True
        return super().set_ok_domain(cookie, request)


def _xsrf(page: requests.Response) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page.text) or re.search(
        r'xsrf_token: "([^"]+)"', page.text
    )
    assert match, f"no XSRF token on {page.url}"
    return match.group(1)


def new_session(verify: bool = True) -> requests.Session:
    session = requests.Session()
    session.cookies.set_policy(BrowserCookiePolicy())
    if not verify:
        session.verify = False
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify=False
    return session


def post_login(
    url: str, username: str, password: str, verify: bool = True
) -> tuple[requests.Session, requests.Response]:
    """POST the login form; the reply is 302 on success, the login page with a message otherwise."""
    session = new_session(verify)
    xsrf = _xsrf(session.get(f"{url}/hub/login", timeout=30))
    reply = session.post(
        f"{url}/hub/login",
        data={"_xsrf": xsrf, "username": username, "password": password},
        allow_redirects=False,
        timeout=30,
    )
    return session, reply


def login(url: str, username: str, password: str, verify: bool = True) -> requests.Session:
    """A logged-in session that can also call the hub's REST API (XSRF header set)."""
    session, reply = post_login(url, username, password, verify)
    assert reply.status_code == 302, f"login of {username} failed: {reply.status_code}"
    session.headers["X-XSRFToken"] = session.cookies.get("_xsrf", path="/hub/") or ""
    return session


def signup(url: str, username: str, password: str, verify: bool = True) -> requests.Response:
    session = new_session(verify)
    xsrf = _xsrf(session.get(f"{url}/hub/signup", timeout=30))
    return session.post(
        f"{url}/hub/signup",
        data={
            "_xsrf": xsrf,
            "username": username,
            "signup_password": password,
            "signup_password_confirmation": password,
        },
        timeout=30,
    )


def page_xsrf(session: requests.Session, url: str) -> tuple[requests.Response, str]:
    page = session.get(url, timeout=30)
    return page, _xsrf(page)


def create_user(admin: requests.Session, url: str, name: str, password: str) -> None:
    """Create an authorized user with a password on the Workspaces page (as an admin)."""
    xsrf = admin.cookies.get("_xsrf", path="/hub/") or ""
    reply = admin.post(
        f"{url}/hub/workspaces/users",
        data={"name": name, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    assert reply.status_code == 302 and "created=" in reply.headers["Location"], (
        reply.status_code,
        reply.headers.get("Location"),
    )


def login_state(url: str, name: str, password: str) -> str:
    """What logging in says: "in", "not authorized" (password right, waiting for an admin),
    "invalid" (no such user or wrong password), or the reply's status for anything else."""
    _, reply = post_login(url, name, password)
    if reply.status_code == 302:
        return "in"
    if "has not been authorized" in reply.text:
        return "not authorized"
    if "Invalid username or password" in reply.text:
        return "invalid"
    return str(reply.status_code)
