"""A jupyter-server extension: ML Workspace's tool paths keep working in an MLHub workspace.

ML Workspace users (and their bookmarks, notebooks and scripts) reach tools at
``<workspace>/tools/...``; MLHub's names differ for some of them. Below the server's URL:

- ``tools/<port>/...``      proxies to that port in the workspace, as ``proxy/<port>/...`` does
                            (HTTP and WebSocket);
- ``tools/glances/...``     redirects to the monitor, ``tools/monitor/...`` (``tools/netdata/``
                            too: ML Workspace's other monitor);
- ``tools/vnc/``            redirects to the desktop's noVNC page (query kept, so ML Workspace's
                            ``?password=...`` still fills in the VNC password); deeper paths to
                            ``tools/desktop/...``.

Every alias sits behind the server's own login (the hub's, or the standalone token), like the
tools themselves.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

#: ML Workspace's tool name -> MLHub's
RENAMED = {"glances": "monitor", "netdata": "monitor", "vnc": "desktop"}
NOVNC_PAGE = "vnc.html?autoconnect=true&resize=remote&path={websockify}"


class ToolAliasHandler(JupyterHandler):
    """Redirects an ML Workspace tool path to the MLHub tool (same login as the tool)."""

    def initialize(self, target: str) -> None:
        self.target = target

    @web.authenticated
    def get(self, rest: str) -> None:
        base = url_path_join(self.base_url, "tools", self.target)
        query = self.request.query
        if self.target == "desktop" and rest in ("", "/"):
            websockify = url_path_join(self.base_url, "tools/desktop/websockify").lstrip("/")
            location = base + "/" + NOVNC_PAGE.format(websockify=websockify) + (f"&{query}" if query else "")
        else:
            location = base + (rest or "/") + (f"?{query}" if query else "")
        self.redirect(location)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlhub_aliases"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server_proxy.handlers import LocalProxyHandler

    base_url = serverapp.web_app.settings["base_url"]
    handlers: list[tuple[Any, ...]] = [
        (url_path_join(base_url, r"/tools/(\d+)(/.*|)"), LocalProxyHandler, {"absolute_url": False}),
    ]
    for old, new in RENAMED.items():
        handlers.append((url_path_join(base_url, rf"/tools/{old}(/.*|)"), ToolAliasHandler, {"target": new}))
    serverapp.web_app.add_handlers(".*$", handlers)
    serverapp.log.info("MLHub: ML Workspace tool paths answer: tools/<port>/, %s",
                       ", ".join(f"tools/{old}/ -> tools/{new}/" for old, new in RENAMED.items()))
