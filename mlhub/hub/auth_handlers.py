"""NativeAuthenticator's admin actions, made safe against cross-site requests, and its
sign-up page, which never hands out an admin's name.

Upstream, ``GET /hub/authorize/<name>`` toggles a user's authorization and
``GET /hub/discard/<name>`` deletes a waiting user: any page the admin opens (an ``<img>``
is enough) could do it, since XSRF checks cover POST only. Here both are POST forms with
the page's ``_xsrf`` token (checked by JupyterHub for every POST), the POST says which state
it wants (a repeated click changes nothing more), and a GET changes nothing and answers 405.
"""

from __future__ import annotations

import math
from typing import Any

from jupyterhub.scopes import needs_scope
from nativeauthenticator.handlers import AuthorizationAreaHandler, LocalBase, SignUpHandler
from nativeauthenticator.orm import UserInfo
from tornado import web

from mlhub.hub.rate_limit import client_address

#: What a GET to an action URL answers (405), for people with an old link or bookmark.
USE_THE_BUTTON = (
    "Use the button on the Authorize Users page ({page}): this address changes nothing when opened as a link."
)


class _ActionHandler(LocalBase):
    """GET refuses (405, changes nothing); POST (with ``_xsrf``) acts."""

    @needs_scope("admin:users")
    async def get(self, _name: str) -> None:
        raise web.HTTPError(405, USE_THE_BUTTON.format(page=self.hub.base_url + "authorize"))

    def _back(self, name: str = "") -> None:
        self.redirect(self.hub.base_url + "authorize" + (f"#{name}" if name else ""))


class AuthorizeHandler(_ActionHandler):
    """``POST /hub/authorize/<name>`` with ``authorized=1`` (authorize) or ``0`` (withdraw)."""

    @needs_scope("admin:users")
    async def post(self, name: str) -> None:
        wanted = self.get_body_argument("authorized", "")
        if wanted not in ("0", "1"):
            raise web.HTTPError(400, "authorized: must be 1 (authorize) or 0 (unauthorize)")
        info = self.authenticator.get_user(name)
        if info is None:
            raise web.HTTPError(404, f"No user {name!r} has signed up")
        if wanted == "0" and info.username in self.authenticator.admin_users:
            raise web.HTTPError(
                400, f"{info.username!r} is one of the hub's admin_users and stays authorized"
            )
        info.is_authorized = wanted == "1"
        self.db.commit()
        self.log.info(
            "%s %s user %s",
            self.current_user.name,
            "authorized" if info.is_authorized else "withdrew the authorization of",
            info.username,
        )
        self._back(info.username)


class DiscardHandler(_ActionHandler):
    """``POST /hub/discard/<name>``: delete a user who signed up and was never authorized."""

    @needs_scope("admin:users")
    async def post(self, name: str) -> None:
        info = self.authenticator.get_user(name)
        if info is None:
            raise web.HTTPError(404, f"No user {name!r} has signed up")
        if info.is_authorized:
            raise web.HTTPError(
                400,
                f"{info.username!r} is authorized; unauthorize them first, or delete them on the Admin page",
            )
        username = info.username
        self.authenticator.delete_user(type("User", (), {"name": username}))
        if self.users.get(username) is not None:
            self.users.delete(username)
        self.log.info("%s discarded the sign-up of %s", self.current_user.name, username)
        self._back()


class AuthorizationAreaPage(AuthorizationAreaHandler):
    """The Authorize Users page, told who the admins are (their row has no Unauthorize)."""

    @needs_scope("admin:users")
    async def get(self) -> None:
        html = await self.render_template(
            "authorization-area.html",
            ask_email=self.authenticator.ask_email_on_signup,
            users=self.db.query(UserInfo).all(),
            admin_names=set(self.authenticator.admin_users),
        )
        self.finish(html)


class MLHubSignUpHandler(SignUpHandler):
    """Sign-up that refuses the names in ``admin_users``: they are made by the hub
    (``initial_admin_password``) or by an admin, never by whoever signs up first."""

    async def post(self) -> None:
        if not self.authenticator.enable_signup:
            raise web.HTTPError(404)
        name = self.authenticator.normalize_username(self.get_body_argument("username", "", strip=False))
        limiter = getattr(self.authenticator, "signup_limiter", None)
        wait = limiter.hit(client_address(self.request)) if limiter is not None else None
        if wait is not None:
            self.log.warning(
                "Sign-up as %r from %s refused: too many attempts from that address",
                name,
                client_address(self.request),
            )
            self.set_status(429)
            self.set_header("Retry-After", str(math.ceil(wait)))
            await self._refuse(
                f"Too many sign-ups from your address; try again in {math.ceil(wait)} seconds."
            )
            return
        if name in self.authenticator.admin_users:
            self.log.warning(
                "Refused a sign-up as %r from %s: an admin's name", name, client_address(self.request)
            )
            await self._refuse(
                f"The name {name!r} belongs to this hub's admin and cannot be signed up for; choose another name."
            )
            return
        await super().post()

    async def _refuse(self, message: str, **extra: Any) -> None:
        html = await self.render_template(
            "signup.html",
            ask_email=self.authenticator.ask_email_on_signup,
            result_message=message,
            alert="alert-danger",
            two_factor_auth=self.authenticator.allow_2fa,
            recaptcha_key=self.authenticator.recaptcha_key,
            tos=self.authenticator.tos,
            **extra,
        )
        self.finish(html)
