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

import os
import secrets
from typing import Any

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from tornado.escape import url_escape
from tornado.httputil import url_concat
from traitlets import Unicode

from .auth_handlers import AuthorizationAreaPage, AuthorizeHandler, DiscardHandler, MLHubSignUpHandler

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
    """NativeAuthenticator's login page, compatible with JupyterHub 6."""

    statsd = _NoStatsd()

    def _render(self, login_error: str | None = None, username: str | None = None, sync: bool = False, **_: Any) -> Any:
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.admin_users:
            self._create_initial_admin(sorted(self.admin_users)[0])

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [
            (pattern, MLHubLoginHandler if handler is NativeLoginHandler else _REPLACED_HANDLERS.get(pattern, handler))
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
                "nobody can sign up with that name", name,
            )
            return
        if self.create_user(name, password) is None:
            self.log.error(
                "Could not create admin account %s: password too weak or sign-up disabled", name
            )
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
        self.log.warning("Generated a password for admin account %s into %s (mode 600): log in with it", name, path)
        return password
