"""``MLHubNativeAuthenticator``: NativeAuthenticator that can create the admin account at
first start (entry point ``mlhub-native``), so a new hub is usable without a sign-up dance."""

from __future__ import annotations

from nativeauthenticator import NativeAuthenticator
from traitlets import Unicode


class MLHubNativeAuthenticator(NativeAuthenticator):
    """Sign-up with admin authorization (NativeAuthenticator), plus an initial admin password."""

    initial_admin_password = Unicode(
        "",
        config=True,
        help="""Password for the first name in ``admin_users``, set only when that account does
        not exist yet (first start). Empty: the admin signs up like anyone else (and is
        authorized automatically). Changing it later has no effect; use the change-password page.""",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.initial_admin_password and self.admin_users:
            self._create_initial_admin(sorted(self.admin_users)[0])

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
