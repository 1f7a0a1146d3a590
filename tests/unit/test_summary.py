"""What the hub's pages say about a workspace (pure logic; the pages are tested in test_ui)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlhub.hub.summary import has_tools, summarize, time_left, tools_for

NOW = 1_000_000


@pytest.mark.parametrize(
    "expires_at, text, expired",
    [
        (0, "never expires", False),
        (NOW + 3 * 86400, "3 days left", False),
        (NOW + 86400 + 2 * 3600 + 59, "1 day 2 h left", False),
        (NOW + 5 * 3600 + 120, "5 h 2 min left", False),
        (NOW + 30, "1 min left", False),
        (NOW, "expired", True),
        (NOW - 10, "expired", True),
    ],
)
def test_time_left(expires_at, text, expired):
    assert time_left(expires_at, NOW) == (text, expired)


def test_tools_only_for_the_workspace_image_and_desktop_only_in_full():
    images = ["mlhub/workspace"]
    assert has_tools("mlhub/workspace", images) and has_tools("registry:5000/mlhub/workspace:full", images)
    assert not has_tools("evil-mlhub/workspace", images) and not has_tools("jupyter/base-notebook", images)
    minimal = dict(tools_for("mlhub/workspace:latest", images, "/user/a/ws/"))
    assert minimal == {
        "VS Code": "/user/a/ws/tools/vscode/",
        "TensorBoard": "/user/a/ws/tools/tensorboard/",
        "Monitoring": "/user/a/ws/tools/monitor/",
    }
    full = dict(tools_for("mlhub/workspace:full", images, "/user/a/ws/"))
    assert full["Desktop"].endswith("&path=user/a/ws/tools/desktop/websockify")
    assert tools_for("jupyter/base-notebook", images, "/user/a/") == ()
    # per-user origins: the workspace's URL has its host; noVNC still gets a path from the root
    on_origin = dict(tools_for("mlhub/workspace:full", images, "http://a.localhost:8080/user/a/ws/"))
    assert on_origin["Desktop"] == (
        "http://a.localhost:8080/user/a/ws/tools/desktop/vnc.html?autoconnect=true&resize=remote"
        "&path=user/a/ws/tools/desktop/websockify"
    )


def _owner(name="alice"):
    return SimpleNamespace(
        name=name, server_url=lambda server: f"/user/{name}/" + (f"{server}/" if server else "")
    )


def test_stopped_server_row_from_the_database_keeps_creator_and_expiry():
    """JupyterHub hands out ORM rows for stopped servers: no ready/mlhub_meta, only state."""
    row = SimpleNamespace(
        name="ws",
        state={
            "mlhub": {
                "created_by": "admin",
                "expiration_timestamp": NOW + 86400,
                "options": {
                    "image": "mlhub/workspace:latest",
                    "cpu_limit": 0.5,
                    "mem_limit": "1g",
                    "gpus": "none",
                },
            }
        },
    )
    w = summarize(row, _owner(), ["mlhub/workspace"], now=NOW)
    assert (w.status, w.created_by, w.time_left, w.resources) == (
        "stopped",
        "admin",
        "1 day left",
        "0.5 CPU, 1g memory",
    )
    assert w.tools == () and w.url == "/user/alice/ws/"


def test_running_server_of_any_spawner():
    spawner = SimpleNamespace(name="", ready=True, pending=None, image="jupyter/base-notebook", state=None)
    w = summarize(spawner, _owner(), ["mlhub/workspace"], now=NOW)
    assert (w.status, w.image, w.resources, w.time_left, w.label) == (
        "running",
        "jupyter/base-notebook",
        "hub defaults",
        "never expires",
        "default",
    )
