"""Per-user origins: every user's workspaces on ``<user>.<hub domain>``, the hub and its
services on the hub's own domain (see docs/decisions/per-user-origins.md).

A workspace is its user's to control (``EXECUTE_CODE``, their own server config, any port under
``/proxy/``), so what it serves must never run with the authority of someone who opens it.
Browsers keep origins apart: a page on ``alice.hub.example.org`` cannot read the hub's pages,
its ``_xsrf`` value or another user's workspace.
"""

from __future__ import annotations

from jupyterhub.utils import subdomain_hook_idna
from tornado import web

#: Shown to admins on every hub page, and logged at start, when per-user origins are off.
SINGLE_ORIGIN_WARNING = (
    "Per-user origins are off (MLHUB_USER_SUBDOMAINS=false): every workspace is served on the "
    "hub's own origin, so a page any user serves from their workspace runs with the authority of "
    "whoever opens it (it can create API tokens for them and act as them, an admin included). "
    "Only safe when every user is trusted."
)

#: Logged at start when per-user origins are on over plain HTTP on a public host name.
PLAIN_HTTP_WARNING = (
    "Per-user origins over plain HTTP on {host}: a workspace page can set cookies for the whole "
    "domain (cookie tossing) and log a visitor's browser in as its user. Serve the hub over HTTPS "
    "(SSL_ENABLED=true or a TLS proxy with MLHUB_PUBLIC_URL=https://...), where the hub's cookies "
    "carry the __Host- prefix that no sibling origin can set."
)


def subdomain_hook(name: str, domain: str, kind: str) -> str:
    """JupyterHub's ``subdomain_hook``: users get ``<user>.<domain>`` (JupyterHub's IDNA scheme,
    which hashes names that are not DNS-safe), services stay on the hub's own domain."""
    if kind == "service":
        return domain
    return subdomain_hook_idna(name, domain, kind)


def is_loopback_name(host: str) -> bool:
    """``localhost`` and ``*.localhost``: browsers resolve them to loopback and refuse cookies
    set by a subdomain for the whole of ``localhost`` (it is a reserved top-level name)."""
    return host == "localhost" or host.endswith(".localhost")


def on_user_origin(host: str, domain: str) -> bool:
    """Whether a request's host name is a user's origin: a subdomain of the hub's domain."""
    host = host.lower().rstrip(".")
    return bool(domain) and host != domain and host.endswith("." + domain)


def refuse_hub_pages_on_user_origins() -> None:
    """Serve the hub's own pages and API (``/hub/...``) only on the hub's origin.

    The proxy sends every request it has no route for to the hub, so ``/hub/login`` also
    answers on ``mallory.<domain>``: a visitor logging in there would hand the hub's session on
    mallory's origin to her page. There, a GET is redirected to the same path on the hub's own
    URL and anything else is refused. Requests from workspaces and services reach the hub's
    API by its internal address, not a user's host name, and are not affected.
    """
    from jupyterhub.handlers.base import BaseHandler

    if getattr(BaseHandler, "_mlhub_origin_guard", False):
        return
    original = BaseHandler.prepare

    async def prepare(self: BaseHandler) -> None:
        subdomain_host = self.settings.get("subdomain_host", "")
        if subdomain_host and self.request.path.startswith(self.hub.base_url):
            if on_user_origin(self.request.host_name, self.settings.get("domain", "")):
                self.log.warning(
                    "Refused %s %s on a user's origin (%s): the hub answers on its own origin only",
                    self.request.method,
                    self.request.path,
                    self.request.host_name,
                )
                if self.request.method in ("GET", "HEAD"):
                    self.redirect(subdomain_host.rstrip("/") + self.request.uri)
                    return
                raise web.HTTPError(403, "The hub answers on its own address only")
        await original(self)

    BaseHandler.prepare = prepare  # type: ignore[method-assign]
    BaseHandler._mlhub_origin_guard = True  # type: ignore[attr-defined]
