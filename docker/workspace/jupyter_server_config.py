# Server config baked into the MLHub workspace image (the hub does not need it: any image
# that runs jupyterhub-singleuser works). It registers the workspace's tools with
# jupyter-server-proxy at <server URL>/tools/<tool>/, behind the same hub login as JupyterLab,
# lists them in the JupyterLab launcher and an "Open tool" menu, and applies the ML
# Workspace variables handled inside the server (SHUTDOWN_INACTIVE_KERNELS).
import json
import os
import shutil
import sys
import tempfile

c = get_config()  # noqa: F821
c.ServerApp.root_dir = "/workspace"
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}

TOOLS_PREFIX = "tools/"


prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")


def _tool(title, command, timeout=30, environment=None, page=""):
    entry = {"enabled": True, "title": title}
    if page:
        entry["path_info"] = page
    return {
        "command": command,
        "timeout": timeout,
        "environment": environment or {},
        "new_browser_tab": True,
        "launcher_entry": entry,
    }


tools = {}
if shutil.which("code-server"):
    tools["vscode"] = _tool(
        "VS Code",
        ["code-server", "--auth=none", "--bind-addr=127.0.0.1:{port}", "--disable-telemetry",
         "--disable-update-check", "--disable-workspace-trust", "/workspace"],
        timeout=60,
    )
if shutil.which("tensorboard"):
    logdir = os.environ.get("TENSORBOARD_LOGDIR", "/workspace/logs")
    os.makedirs(logdir, exist_ok=True)
    tools["tensorboard"] = _tool(
        "TensorBoard", ["tensorboard", "--logdir", logdir, "--host", "127.0.0.1", "--port", "{port}"], timeout=60
    )
if shutil.which("glances"):
    tools["monitor"] = _tool(
        "Monitor (Glances)", ["glances", "-w", "--bind", "127.0.0.1", "--port", "{port}", "--disable-autodiscover"]
    )
if shutil.which("ungit"):
    # ungit builds its links from --rootPath, so it gets the full path (absolute_url); no
    # browser to open, no calls home (version check, bug reports), no fetch on its own
    tools["ungit"] = _tool(
        "Ungit",
        ["ungit", "--port={port}", "--ungitBindIp=127.0.0.1", "--rootPath={base_url}" + TOOLS_PREFIX + "ungit",
         "--launchBrowser=false", "--bugtracking=false", "--sendUsageStatistics=false",
         "--ungitVersionCheckOverride=true", "--autoFetch=false"],
        timeout=60,
        page=f"{TOOLS_PREFIX}ungit/#/repository?path=/workspace",
    )
    tools["ungit"]["absolute_url"] = True
if shutil.which("mlhub-desktop"):
    # noVNC finds its WebSocket by a path from the host's root
    vnc = f"vnc.html?autoconnect=true&resize=remote&path={prefix.lstrip('/')}{TOOLS_PREFIX}desktop/websockify"
    tools["desktop"] = _tool("Desktop (noVNC)", ["mlhub-desktop", "{port}"], timeout=60,
                             page=f"{TOOLS_PREFIX}desktop/{vnc}")

c.ServerProxy.servers = {TOOLS_PREFIX + name: spec for name, spec in tools.items()}

# "Open tool" in JupyterLab's menu bar: absolute links, known only now (the server's URL).
items = [
    {"command": "help:open", "args": {"url": prefix + spec["launcher_entry"].get("path_info", f"{TOOLS_PREFIX}{name}/"),
                                      "text": spec["launcher_entry"]["title"], "newBrowserTab": True}}
    for name, spec in tools.items()
]
settings_dir = tempfile.mkdtemp(prefix="mlhub-lab-settings-")
with open(os.path.join(settings_dir, "overrides.json"), "w") as fh:
    json.dump(
        {"@jupyterlab/mainmenu-extension:plugin": {"menus": [
            {"id": "mlhub-tools-menu", "label": "Open tool", "rank": 80, "items": items}
        ]}},
        fh,
    )
c.LabApp.app_settings_dir = settings_dir

# ML Workspace: SHUTDOWN_INACTIVE_KERNELS = seconds, or "true" for 48 hours.
_shutdown = os.environ.get("SHUTDOWN_INACTIVE_KERNELS", "false").strip().lower()
if _shutdown not in ("", "false", "0", "no", "off"):
    c.MappingKernelManager.cull_idle_timeout = 48 * 3600 if _shutdown in ("true", "yes", "on") else int(_shutdown)
    c.MappingKernelManager.cull_interval = 60
    c.MappingKernelManager.cull_connected = True

# A workspace busy with work is not idle: busy kernels, terminals running a command and CPU use
# count as activity for the hub's idle culler (/opt/mlhub/python/mlhub_activity.py).
if os.path.isdir("/opt/mlhub/python") and "/opt/mlhub/python" not in sys.path:
    sys.path.append("/opt/mlhub/python")
c.ServerApp.jpserver_extensions.update({"mlhub_activity": True})
# ML Workspace's tool paths as aliases: tools/<port>/, tools/glances/, tools/vnc/ (mlhub_aliases.py)
c.ServerApp.jpserver_extensions.update({"mlhub_aliases": True})
