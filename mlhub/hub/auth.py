"""``MLHubNativeAuthenticator`` (entry point ``mlhub-native``): NativeAuthenticator that

- creates the admin account at first start, so a new hub is usable without a sign-up dance;
- authorizes and discards users by POST with XSRF only, and never lets anyone sign up with an
  admin's name (``auth_handlers.py``);
- works on JupyterHub 6: NativeAuthenticator 1.3.0's login page uses ``handler.statsd``,
  which JupyterHub 6 removed, and its ``_render`` does not accept the arguments JupyterHub
  passes when it shows a login error. Its login handler is replaced by a subclass that fixes
  both (see docs/decisions/nativeauthenticator-on-jupyterhub-6.md).
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
from typing import Any

import bcrypt
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from tornado.escape import url_escape
from tornado.httputil import url_concat
from traitlets import Integer, Unicode

from mlhub.hub.auth_handlers import (
    AuthorizationAreaPage,
    AuthorizeHandler,
    DiscardHandler,
    MLHubSignUpHandler,
)
from mlhub.hub.rate_limit import RateLimiter, client_address

#: NativeAuthenticator's routes whose handlers MLHub replaces (see auth_handlers.py).
_REPLACED_HANDLERS: dict[str, Any] = {
    r"/signup": MLHubSignUpHandler,
    r"/authorize": AuthorizationAreaPage,
    r"/authorize/([^/]*)": AuthorizeHandler,
    r"/discard/([^/]*)": DiscardHandler,
}


class _NoStatsd:
    """Stands in for the statsd client JupyterHub 6 no longer provides; records nothing."""

    def timer(self, _name: str) -> _NoStatsd:
        return self

    def start(self) -> _NoStatsd:
        return self

    def stop(self, send: bool = True) -> None:
        return None


class MLHubLoginHandler(NativeLoginHandler):
    """NativeAuthenticator's login page, compatible with JupyterHub 6; limited per client
    address, and saying when a name is locked after repeated wrong passwords."""

    statsd = _NoStatsd()

    async def post(self) -> None:
        data = {arg: self.get_argument(arg, strip=False) for arg in self.request.arguments}
        username = data.get("username", "")
        wait = self.authenticator.login_limiter.hit(client_address(self.request))
        if wait is not None:
            self.log.warning(
                "Login as %r from %s refused: too many attempts from that address",
                username,
                client_address(self.request),
            )
            self.set_status(429)
            self.set_header("Retry-After", str(math.ceil(wait)))
            message = f"Too many login attempts from your address; try again in {math.ceil(wait)} seconds."
            self.finish(await self._render(login_error=message, username=username))
            return
        user = await self.login_user(data)
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        outcome = getattr(self, "mlhub_login_outcome", "")
        if outcome == "locked":
            minutes = math.ceil(self.authenticator.seconds_before_next_try / 60)
            error = f"Too many failed logins for {username!r}; try again in {minutes} minutes."
        elif outcome == "not authorized":
            error = f"User {username} has not been authorized by an administrator yet."
        else:
            error = "Invalid username or password."
        self.finish(await self._render(login_error=error, username=username))

    def _render(
        self, login_error: str | None = None, username: str | None = None, sync: bool = False, **_: Any
    ) -> Any:
        return self.render_template(
            "native-login.html",
            sync=sync,
            next=url_escape(self.get_argument("next", default="")),
            username=username,
            login_error=login_error,
            custom_html=self.authenticator.custom_html,
            login_url=self.settings["login_url"],
            enable_signup=self.authenticator.enable_signup,
            two_factor_auth=self.authenticator.allow_2fa,
            authenticator_login_url=url_concat(
                self.authenticator.login_url(self.hub.base_url),
                {"next": self.get_argument("next", "")},
            ),
        )


class MLHubNativeAuthenticator(NativeAuthenticator):
    """Sign-up with admin authorization (NativeAuthenticator), plus an initial admin password."""

    initial_admin_password = Unicode(
        "",
        config=True,
        help="""Password for the first name in ``admin_users``, set only when that account does
        not exist yet (first start). Empty: the password is read from
        ``initial_admin_password_file``, or generated into it. Changing it later has no effect;
        use the change-password page. Nobody can sign up with an admin's name.""",
    )
    initial_admin_password_file = Unicode(
        "",
        config=True,
        help="""File holding the first admin's password when ``initial_admin_password`` is empty:
        read when it exists and is not empty, otherwise a random password is generated into it
        (mode 600) at first start and its path is logged. Empty: no file; the admin account is
        then not created (and still cannot be signed up for).""",
    )

    login_rate_limit = Integer(
        60,
        config=True,
        help="""Most POSTs of the login form, and separately of the sign-up form, per client
        address per minute; more get 429 with Retry-After. 0: no limit. (Per name, repeated
        wrong passwords lock the name: ``allowed_failed_logins``, ``seconds_before_next_try``.)""",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.login_limiter = RateLimiter(self.login_rate_limit)
        self.signup_limiter = RateLimiter(self.login_rate_limit)
        if self.admin_users:
            self._create_initial_admin(sorted(self.admin_users)[0])

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> str | None:
        """NativeAuthenticator's check, with bcrypt run in a thread: a burst of logins must
        not stall the hub's event loop (every other request waits while it hashes). Tells the
        login page why a login failed (``handler.mlhub_login_outcome``)."""
        username = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        user = self.get_user(username)
        if not user:
            return None
        if self.allowed_failed_logins and self.is_blocked(username):
            self.log.warning(
                "Login as %s refused: locked after %d failed logins", username, self.allowed_failed_logins
            )
            handler.mlhub_login_outcome = "locked"
            return None
        valid = await asyncio.to_thread(bcrypt.checkpw, password.encode(), user.password)
        checks = [user.is_authorized, valid]
        if user.has_2fa:
            checks.append(user.is_valid_token(data.get("2fa")))
        if all(checks):
            self.successful_login(username)
            return username
        if valid and not user.is_authorized:
            handler.mlhub_login_outcome = "not authorized"
        self.add_login_attempt(username)
        return None

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [
            (
                pattern,
                MLHubLoginHandler
                if handler is NativeLoginHandler
                else _REPLACED_HANDLERS.get(pattern, handler),
            )
            for pattern, handler in super().get_handlers(app)
        ]

    def _create_initial_admin(self, name: str) -> None:
        if self.user_exists(name):
            self.log.info("Admin account %s exists; the initial admin password is not used", name)
            return
        password, source = self.initial_admin_password, "the initial admin password"
        if not password and self.initial_admin_password_file:
            password = self._password_from_file(name)
            source = f"the password in {self.initial_admin_password_file}"
        if not password:
            self.log.warning(
                "Admin account %s does not exist and no initial admin password is configured; "
                "nobody can sign up with that name",
                name,
            )
            return
        if self.create_user(name, password) is None:
            self.log.error("Could not create admin account %s: password too weak or sign-up disabled", name)
            return
        self.log.info("Created admin account %s with %s", name, source)

    def _password_from_file(self, name: str) -> str:
        """The password in ``initial_admin_password_file``, generated there (mode 600) if absent."""
        path = self.initial_admin_password_file
        try:
            with open(path) as stored:
                password = stored.read().strip()
        except FileNotFoundError:
            password = ""
        if password:
            return password
        password = secrets.token_urlsafe(12)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stored:
            os.fchmod(stored.fileno(), 0o600)
            stored.write(password + "\n")
        self.log.warning(
            "Generated a password for admin account %s into %s (mode 600): log in with it", name, path
        )
        return password
