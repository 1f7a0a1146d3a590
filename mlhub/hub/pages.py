"""The hub's own pages that MLHub adds (registered with ``c.JupyterHub.extra_handlers``).

- ``/hub/workspaces``: the admin's view of every workspace (owner, status, resources,
  created-by, time left) with start/stop/delete, "SSH access", "new workspace for a user" and
  "new user". Starting and creating go through JupyterHub's own spawn page and REST API, so
  the same options validator and the same scopes apply as everywhere else.
- ``POST /hub/workspaces/users``: create a user with a password the admin gives (with
  NativeAuthenticator; other authenticators just get the hub user), authorized at once.

Pages render JupyterHub's templates (``workspaces.html`` extends ``page.html``), so they look
native and follow its XSRF and login rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web
from tornado.httputil import url_concat

from mlhub.hub.summary import DEFAULT_TOOL_IMAGES, WorkspaceSummary, summarize


def _summaries(handler: BaseHandler) -> tuple[list[WorkspaceSummary], list[str]]:
    """(every workspace worth showing, every user name), sorted by owner then name."""
    rows: list[WorkspaceSummary] = []
    names: list[str] = []
    for orm_user in handler.db.query(orm.User).order_by(orm.User.name):
        user = handler.users[orm_user]
        names.append(user.name)
        describe = workspace_describer(user)
        assert describe is not None
        for spawner in user.all_spawners(include_default=True):
            row = describe(spawner)
            if spawner.name == "" and row.status == "stopped" and not row.created_by:
                continue  # a default server never started: nothing to show
            rows.append(row)
    rows.sort(key=lambda r: (r.owner, r.name))
    return rows, names


def workspace_describer(user: Any) -> Callable[[Any], WorkspaceSummary] | None:
    """``describe(spawner)`` for *user*'s servers (running wrappers or stopped ORM rows).

    Also a template variable (``c.JupyterHub.template_vars["mlhub_describe"]``): JupyterHub
    calls it with the current user (None on the login page), and the home page calls the
    result for each server.
    """
    if user is None:
        return None
    tool_images = getattr(user.spawner, "tool_images", DEFAULT_TOOL_IMAGES)

    def describe(spawner: Any) -> WorkspaceSummary:
        return summarize(spawner, user, tool_images)

    return describe


class WorkspacesHandler(BaseHandler):
    """GET /hub/workspaces: every user's workspaces, for admins."""

    @web.authenticated
    @needs_scope("admin-ui")
    async def get(self) -> None:
        rows, names = _summaries(self)
        html = await self.render_template(
            "workspaces.html",
            workspaces=rows,
            user_names=names,
            created=self.get_argument("created", ""),
            error=self.get_argument("error", ""),
            can_create_users="admin:users" in self.expanded_scopes,
            password_min_length=getattr(self.authenticator, "minimum_password_length", 0),
        )
        self.finish(html)


class CreateUserHandler(BaseHandler):
    """POST /hub/workspaces/users (form: name, password, admin): a new, authorized user."""

    @web.authenticated
    @needs_scope("admin:users")
    async def post(self) -> None:
        name = self.authenticator.normalize_username(self.get_body_argument("name", "").strip())
        password = self.get_body_argument("password", "")
        make_admin = self.get_body_argument("admin", "") == "on"
        try:
            self._check_new_user(name, password)
        except ValueError as exc:
            self.log.warning("%s could not create user %r: %s", self.current_user.name, name, exc)
            self.redirect(self._back(error=str(exc)))
            return
        native = hasattr(self.authenticator, "create_user") and hasattr(self.authenticator, "get_user")
        if native:
            info = self.authenticator.create_user(name, password)
            if info is None:
                self.redirect(
                    self._back(error=f"user: {name!r} could not be created (sign-up is switched off?)")
                )
                return
            info.is_authorized = True
            self.authenticator.db.commit()
        user = self.user_from_username(name)
        if make_admin:
            user.admin = True
            self.db.commit()
        self.log.info(
            "%s created user %s%s%s",
            self.current_user.name,
            name,
            " (admin)" if make_admin else "",
            " with a password, authorized" if native else "",
        )
        self.redirect(self._back(created=name))

    def _check_new_user(self, name: str, password: str) -> None:
        """ValueError naming the field, before anything is written."""
        if not name or not self.authenticator.validate_username(name):
            raise ValueError(f"name: {name!r} is not an allowed user name (letters, digits, '-', '_', '.')")
        if self.find_user(name) is not None or (
            hasattr(self.authenticator, "user_exists") and self.authenticator.user_exists(name)
        ):
            raise ValueError(f"name: user {name!r} already exists")
        if hasattr(self.authenticator, "is_password_strong"):
            if not self.authenticator.is_password_strong(password):
                minimum = getattr(self.authenticator, "minimum_password_length", 1)
                raise ValueError(
                    f"password: at least {minimum} characters"
                    + (
                        " and not a common password"
                        if getattr(self.authenticator, "check_common_password", False)
                        else ""
                    )
                )

    def _back(self, **query: str) -> str:
        return url_concat(self.hub.base_url + "workspaces", query)


def ui_handlers() -> list[tuple[str, Any]]:
    """For ``c.JupyterHub.extra_handlers`` (paths are under the hub's ``/hub/`` prefix)."""
    return [
        (r"/workspaces/?", WorkspacesHandler),
        (r"/workspaces/users", CreateUserHandler),
    ]
