"""``MLHubNativeAuthenticator`` (entry point ``mlhub-native``): NativeAuthenticator that

- creates the admin account at first start, so a new hub is usable without a sign-up dance;
- works on JupyterHub 6: NativeAuthenticator 1.3.0's login page uses ``handler.statsd``,
  which JupyterHub 6 removed, and its ``_render`` does not accept the arguments JupyterHub
  passes when it shows a login error. Its login handler is replaced by a subclass that fixes
  both (see docs/decisions/nativeauthenticator-on-jupyterhub-6.md).
"""

from __future__ import annotations

from typing import Any

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from tornado.escape import url_escape
from tornado.httputil import url_concat
from traitlets import Unicode


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
        not exist yet (first start). Empty: the admin signs up like anyone else (and is
        authorized automatically). Changing it later has no effect; use the change-password page.""",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.initial_admin_password and self.admin_users:
            self._create_initial_admin(sorted(self.admin_users)[0])

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [
            (pattern, MLHubLoginHandler if handler is NativeLoginHandler else handler)
            for pattern, handler in super().get_handlers(app)
        ]

    def _create_initial_admin(self, name: str) -> None:
        if self.user_exists(name):
            self.log.info("Admin account %s exists; initial_admin_password not used", name)
            return
        if self.create_user(name, self.initial_admin_password) is None:
            self.log.error(
                "Could not create admin account %s: password too weak or sign-up disabled", name
            )
            return
        self.log.info("Created admin account %s with the initial admin password", name)
