"""``MLHubLDAPAuthenticator``: LDAPAuthenticator (jupyterhub-ldapauthenticator 2) plus admins
from LDAP groups, which it lacks.

``admin_groups`` lists group DNs; a user found in one of them (by LDAPAuthenticator's own
``group_search_filter``, as for ``allowed_groups``) is an admin, and may log in even when not in
``allowed_groups``. As with PAMAuthenticator's ``admin_groups`` the groups are authoritative: a
user who left them loses admin rights at the next login, unless named in ``admin_users``.

The group search runs on the connection bound as the user, which LDAPAuthenticator hands to
``get_user_attributes`` after its own checks; the login's name is kept in a context variable
for ``{uid}`` in the filter (each login is its own asyncio task).

Like MLHub's NativeAuthenticator, the login form is limited per client address
(``login_rate_limit``), so the hub is no fast password-guessing oracle for the directory.
"""

from __future__ import annotations

import contextvars
import math
from typing import Any

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets import Integer, List, Unicode

from mlhub.hub.rate_limit import RateLimiter, client_address

#: The login going on in this task: its uid and the admin groups found for it.
_LOGIN: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("mlhub_ldap_login")


class MLHubLDAPAuthenticator(LDAPAuthenticator):
    admin_groups = List(
        Unicode(),
        config=True,
        help="""DNs of LDAP groups whose members are the hub's admins (and may log in even when
        not in ``allowed_groups``). Membership is found as for ``allowed_groups``
        (``group_search_filter``). Authoritative: leaving the groups removes admin rights at
        the next login, unless the name is in ``admin_users``. Empty: admins come from
        ``admin_users`` only.""",
    )

    login_rate_limit = Integer(
        60,
        config=True,
        help="""Most POSTs of the login form per client address per minute; more get 429 with
        Retry-After and reach no LDAP server (the form would otherwise let anyone guess
        passwords against the directory as fast as the hub answers). 0: no limit.""",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.login_limiter = RateLimiter(self.login_rate_limit)

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        address = client_address(handler.request) if handler is not None else ""
        wait = self.login_limiter.hit(address) if address else None
        if wait is not None:
            self.log.warning(
                "LDAP login as %r from %s refused: too many attempts from that address",
                data.get("username", ""),
                address,
            )
            error = web.HTTPError(
                429, f"Too many login attempts from your address; try again in {math.ceil(wait)} seconds."
            )
            error.headers = {"Retry-After": str(math.ceil(wait))}  # type: ignore[attr-defined]
            raise error
        login: dict[str, Any] = {"uid": data.get("username", ""), "admin_groups": []}
        token = _LOGIN.set(login)
        try:
            model = await super().authenticate(handler, data)
        finally:
            _LOGIN.reset(token)
        if model is not None and self.admin_groups:
            model["auth_state"]["ldap_admin_groups"] = login["admin_groups"]
        return model

    def resolve_username(self, username_supplied_by_user: str) -> tuple[str | None, str | None]:
        username, userdn = super().resolve_username(username_supplied_by_user)
        login = _LOGIN.get(None)
        if login is not None and username:
            login["uid"] = username
        return username, userdn

    def get_user_attributes(self, conn: Any, userdn: str) -> dict[str, Any]:
        login = _LOGIN.get(None)
        if login is not None:
            login["admin_groups"] = [
                group for group in self.admin_groups if self._is_member(conn, group, userdn, login["uid"])
            ]
        return super().get_user_attributes(conn, userdn)

    def _is_member(self, conn: Any, group: str, userdn: str, uid: str) -> bool:
        return bool(
            conn.search(
                search_base=group,
                search_scope=ldap3.BASE,
                search_filter=self.group_search_filter.format(
                    userdn=escape_filter_chars(userdn), uid=escape_filter_chars(uid)
                ),
                attributes=self.group_attributes,
            )
        )

    def _admin_groups_of(self, auth_model: dict[str, Any]) -> list[str]:
        return list((auth_model.get("auth_state") or {}).get("ldap_admin_groups") or [])

    async def check_allowed(self, username: str, auth_model: dict[str, Any]) -> bool:
        if await super().check_allowed(username, auth_model):
            return True
        if self._admin_groups_of(auth_model):
            self.log.info(
                "Allowing %s as a member of the admin groups %s", username, self._admin_groups_of(auth_model)
            )
            return True
        return False

    def is_admin(self, handler: Any, authentication: dict[str, Any]) -> bool | None:
        if super().is_admin(handler, authentication):
            return True
        if not self.admin_groups:
            return None
        groups = self._admin_groups_of(authentication)
        self.log.info(
            "LDAP user %s is %s",
            authentication["name"],
            f"an admin (member of {groups})" if groups else "not an admin",
        )
        return bool(groups)
