# MLHub's default JupyterHub configuration.
#
# Works as shipped: `jupyterhub -f jupyterhub_config.py` (what scripts/start-hub.sh runs).
# Every setting below can be changed with an environment variable (see the README's table);
# they are read and validated once, by mlhub.core.settings.read_settings.
# Put your own overrides in a file named by MLHUB_USER_CONFIG; it is loaded last.

import dataclasses
import os
import sys
from urllib.parse import urlparse

from mlhub.core.settings import (
    SettingsError,
    activity_interval,
    ml_hub_leftovers,
    read_settings,
    service_environment,
    shared_port_on,
)

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)

_here = os.path.dirname(os.path.abspath(__file__))
try:
    settings = read_settings(os.environ, default_data_dir=os.path.join(_here, ".mlhub", "data"))
except SettingsError as exc:
    sys.exit(f"MLHub cannot start, invalid environment variables:\n{exc}")
for _line in ml_hub_leftovers(os.environ):
    print(f"[mlhub] WARNING: {_line}", file=sys.stderr, flush=True)

# Everything the hub and its services write (database, cookie secret, SSH host key and key
# store) is readable by the hub's user only.
os.umask(0o077)
os.makedirs(settings.data_dir, mode=0o700, exist_ok=True)


def _docker_facts() -> tuple[str, str | None]:
    """(host's address on Docker's default bridge, name of the hub's own container or None).

    The bridge gateway is reachable from every user network. The hub runs "in a container"
    only when the engine knows a container by our hostname (a machine that merely is a
    container, with its own engine inside, runs the hub as a host process).
    """
    import socket

    import docker

    from mlhub.engines.docker_network import default_bridge_gateway

    try:
        client = docker.from_env(timeout=10)
        gateway = default_bridge_gateway(client.networks.get("bridge").attrs)
    except Exception as exc:  # the engine is needed anyway; say what is wrong
        sys.exit(f"MLHub cannot reach the Docker engine (is it running?): {exc}")
    try:
        own = client.containers.get(socket.gethostname()).name
    except Exception:
        own = None
    return gateway, own


# --- Hub, proxy, database ---------------------------------------------------------------
_docker_mode = settings.execution_mode == "docker"
_gateway, _hub_container = _docker_facts() if _docker_mode else ("", None)

# --- This install's id and its claim on HUB_NAME (docs/decisions/ownership.md) -----------
from mlhub.hub.install import INSTALL_ID_FILE, InstallError, claim_hub_name, read_or_create_install_id  # noqa: E402

_id_file = os.path.join(settings.data_dir, INSTALL_ID_FILE)
try:
    _install_id = settings.install_id or read_or_create_install_id(settings.data_dir)
    if _docker_mode:
        import docker  # noqa: E402

        if claim_hub_name(docker.from_env(timeout=30).api, settings.hub_name, _install_id, _id_file):
            print(
                f"MLHub: HUB_NAME {settings.hub_name!r} claimed on this Docker engine by install {_install_id}",
                file=sys.stderr,
            )
except InstallError as exc:
    print(f"MLHub cannot start:\n{exc}", file=sys.stderr)
    sys.exit(2)
# SSH on the hub's one port (docs/decisions/ssh-on-one-port.md): the port mux holds the
# public port and hands HTTP(S) to the proxy, which then listens on loopback only.
_shared_port = shared_port_on(settings)
c.JupyterHub.ip = "127.0.0.1" if _shared_port else settings.ip
c.JupyterHub.port = settings.proxy_internal_port if _shared_port else settings.port
if settings.ssl_enabled:
    c.JupyterHub.ssl_cert = settings.ssl_cert
    c.JupyterHub.ssl_key = settings.ssl_key
if settings.start_chp or settings.proxy_api_url:
    # The proxy runs as its own process (the hub container's START_CHP role, or its own pod
    # on Kubernetes); the hub talks to it with CONFIGPROXY_AUTH_TOKEN from the environment.
    c.ConfigurableHTTPProxy.should_start = False
if settings.proxy_api_url:
    c.ConfigurableHTTPProxy.api_url = settings.proxy_api_url
if not _docker_mode:
    c.JupyterHub.hub_ip = settings.hub_ip or "0.0.0.0"
    if settings.hub_connect_host:
        # workspace pods reach the hub through its Service
        c.JupyterHub.hub_connect_ip = settings.hub_connect_host
elif _hub_container:
    # The hub runs in a container on this engine; it joins each user's network and
    # workspaces reach it by container name.
    c.JupyterHub.hub_ip = settings.hub_ip or "0.0.0.0"
    c.JupyterHub.hub_connect_ip = _hub_container
    c.MLHubDockerSpawner.hub_container = _hub_container
else:
    c.JupyterHub.hub_ip = settings.hub_ip or _gateway
# --- Origins: each user's workspaces on their own origin (docs/decisions/per-user-origins.md)
from mlhub.hub.origins import (  # noqa: E402
    PLAIN_HTTP_WARNING,
    SINGLE_ORIGIN_WARNING,
    is_loopback_name,
    refuse_hub_pages_on_user_origins,
    subdomain_hook,
)

c.JupyterHub.public_url = settings.public_url
if settings.user_subdomains:
    # <user>.<host> for workspaces, the hub's own host for the hub and its services
    c.JupyterHub.subdomain_host = settings.public_url
    c.JupyterHub.subdomain_hook = subdomain_hook
    refuse_hub_pages_on_user_origins()
    if settings.public_https:
        # __Host- cookies: no sibling origin can set them (cookie tossing)
        c.JupyterHub.cookie_host_prefix_enabled = True
    elif not is_loopback_name(settings.public_host):
        print(f"[mlhub] WARNING: {PLAIN_HTTP_WARNING.format(host=settings.public_host)}", file=sys.stderr)
else:
    print(f"[mlhub] WARNING: {SINGLE_ORIGIN_WARNING}", file=sys.stderr)
c.JupyterHub.db_url = settings.db_url
c.JupyterHub.cookie_secret_file = os.path.join(settings.data_dir, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = os.path.join(settings.data_dir, "jupyterhub-proxy.pid")
# Workspaces keep running when the hub stops or restarts.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = settings.named_server_limit

# --- Who can log in: MLHUB_AUTHENTICATOR (docs/decisions/authenticators.md) --------------
# native: sign-up, the admin authorizes (MLHUB_ADMIN_USER, MLHUB_LOGIN_*); github, gitlab,
# oidc, ldap: the identity provider says who may log in and who is admin.
import nativeauthenticator  # noqa: E402
from traitlets.config import Config  # noqa: E402

from mlhub.hub.identity import IdentityError, authenticator_config  # noqa: E402

try:
    c.merge(Config(authenticator_config(settings)))
except IdentityError as exc:
    sys.exit(f"MLHub cannot start, invalid environment variables:\n  {exc}")
# MLHub's page templates: resources/templates in the repository, templates/ next to this
# file in the hub image.
_templates = next(
    (
        p
        for p in (os.path.join(_here, "resources", "templates"), os.path.join(_here, "templates"))
        if os.path.isdir(p)
    ),
    os.path.join(_here, "resources", "templates"),
)
c.JupyterHub.template_paths = [
    _templates,
    os.path.join(os.path.dirname(nativeauthenticator.__file__), "templates"),
]

# --- Workspaces -------------------------------------------------------------------------
c.JupyterHub.spawner_class = "mlhub-docker" if _docker_mode else "mlhub-kubernetes"
c.MLHubSpawner.hub_name = settings.hub_name
c.MLHubSpawner.install_id = _install_id
c.MLHubSpawner.deleted_user_volumes = settings.deleted_user_volumes
if _docker_mode:
    c.DockerSpawner.image = settings.workspace_image
    c.DockerSpawner.allowed_images = list(settings.allowed_images or (settings.workspace_image,))
else:
    c.KubeSpawner.namespace = settings.namespace or "default"
    c.KubeSpawner.image = settings.workspace_image
    c.MLHubKubeSpawner.allowed_images = list(settings.allowed_images)
    c.KubeSpawner.storage_capacity = settings.volume_size
    if settings.storage_class:
        c.KubeSpawner.storage_class = settings.storage_class
    c.MLHubKubeSpawner.gpu_node_selector = dict(settings.gpu_node_selector)
    c.MLHubKubeSpawner.gpu_tolerations = [dict(t) for t in settings.gpu_tolerations]
c.MLHubSpawner.allow_custom_image = settings.allow_custom_image
c.Spawner.cpu_limit = settings.default_cpu_limit
c.Spawner.mem_limit = settings.default_mem_limit
c.MLHubSpawner.max_cpu_limit = settings.max_cpu_limit
c.MLHubSpawner.max_mem_limit = settings.max_mem_limit
c.MLHubSpawner.max_gpus = settings.max_gpus
c.MLHubSpawner.default_days_to_live = settings.default_days_to_live
c.MLHubSpawner.max_days_to_live = settings.max_days_to_live
c.MLHubSpawner.users_can_create_named_servers = settings.self_service
# Fair bounds on every workspace (docs/decisions/fair-defaults.md, workspace-disk-limit.md)
if _docker_mode:
    from mlhub.engines.workspace_disk import unsupported_reason  # noqa: E402

    c.MLHubDockerSpawner.pids_limit = settings.pids_limit
    c.MLHubDockerSpawner.no_new_privileges = settings.no_new_privileges
    c.MLHubDockerSpawner.workspace_disk_dir = os.path.join(settings.data_dir, "workspace-disks")
    _disk_limit = settings.workspace_disk_limit
    _no_disk_cap = unsupported_reason(in_container=bool(_hub_container)) if _disk_limit else None
    if _no_disk_cap:
        print(
            f"[MLHub] WARNING: MLHUB_WORKSPACE_DISK_LIMIT ({_disk_limit} bytes) is not enforced: {_no_disk_cap}. "
            "/workspace volumes have no size cap (docs/decisions/workspace-disk-limit.md); "
            "set MLHUB_WORKSPACE_DISK_LIMIT=0 to silence this.",
            file=sys.stderr,
        )
        _disk_limit = 0
    c.MLHubDockerSpawner.workspace_disk_limit = _disk_limit or None
# Workspaces boot a few at a time (MLHubDockerSpawner.concurrent_boots); a start waiting its
# turn counts against start_timeout, so a burst of starts (a class logging in at 9:00) queues
# instead of failing: 300 s (zero-to-jupyterhub's default) covers 200 at once on 2 cores.
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 60
# Pending starts are cheap while they wait for a boot slot; JupyterHub's default (100)
# answered 429 to half of a 200-user burst (docs/decisions/boot-gate.md).
c.JupyterHub.concurrent_spawn_limit = 300

# Where the proxy reaches the hub's services: on loopback, unless the proxy runs in its own
# pod (Kubernetes), which reaches them through the hub's Service.
_service_host = (
    settings.hub_connect_host if (settings.proxy_api_url and settings.hub_connect_host) else "127.0.0.1"
)

# Services get a clean environment; these tell them where the engine / API server is.
_passed_through_env = {
    name: os.environ[name]
    for name in ("DOCKER_HOST", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
    if os.environ.get(name)
}
# ... and which process is their hub: a service exits when it is gone, also when that happened
# while the service was still starting (mlhub.core.lifetime)
_passed_through_env["MLHUB_HUB_PID"] = str(os.getpid())

# What the services receive: the settings table's variables for each (with the install id the
# hub uses, also when it was generated).
_effective = dataclasses.replace(settings, install_id=_install_id)

# --- Services: cleanup (always), SSH gateway (START_SSH), idle culling (on unless 0) -----
c.JupyterHub.services = [
    {
        "name": "cleanup-service",
        "url": f"http://{_service_host}:{settings.cleanup_port}",
        "command": [sys.executable, "-m", "mlhub.services.cleanup"],
        "environment": {**service_environment(_effective, "cleanup"), **_passed_through_env},
        "oauth_no_confirm": True,
    }
]
c.JupyterHub.load_roles = [
    {
        "name": "cleanup-service",
        "scopes": ["list:users", "read:users", "read:servers", "admin:server_state", "delete:servers"],
        "services": ["cleanup-service"],
    }
]
_public_port = urlparse(settings.public_url).port or (443 if settings.public_https else 80)
if _shared_port:
    _ssh_host = settings.ip if settings.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
    c.JupyterHub.services.append(
        {
            "name": "port-mux",
            "command": [sys.executable, "-m", "mlhub.hub.port_mux"],
            "environment": {
                "MLHUB_MUX_IP": settings.ip,
                "MLHUB_MUX_PORT": str(settings.port),
                "MLHUB_MUX_HTTPS_UPSTREAM": f"127.0.0.1:{settings.proxy_internal_port}",
                "MLHUB_MUX_SSH_UPSTREAM": f"{_ssh_host}:{settings.ssh_port}",
                "MLHUB_MUX_MAX_CONNECTIONS": str(settings.port_mux_max_connections),
                "MLHUB_HUB_PID": _passed_through_env["MLHUB_HUB_PID"],
            },
        }
    )
if settings.start_ssh:
    c.JupyterHub.services.append(
        {
            "name": "ssh",
            "url": f"http://{_service_host}:{settings.ssh_service_port}",
            "command": [sys.executable, "-m", "mlhub.services.ssh"],
            "environment": {**service_environment(_effective, "ssh"), **_passed_through_env},
            "oauth_no_confirm": True,
            "display": True,
        }
    )
    c.JupyterHub.load_roles.append(
        {
            "name": "ssh-gateway",
            # read:servers + admin:server_state: which container a running server is;
            # users:activity: an open SSH session keeps its workspace from being culled
            "scopes": ["list:users", "read:users", "read:servers", "admin:server_state", "users:activity"],
            "services": ["ssh"],
        }
    )
    # Every user may use the SSH page and keys API (browsers via OAuth, scripts via tokens).
    c.JupyterHub.load_roles.append({"name": "user", "scopes": ["self", "access:services!service=ssh"]})
if settings.cull_idle_seconds:
    # Workspaces report their activity (requests, kernels, and on the bundled image busy
    # kernels, terminals running a command, CPU use) every quarter of the timeout, at most 300 s.
    c.Spawner.environment = {
        **(c.Spawner.environment if "environment" in c.Spawner else {}),
        "JUPYTERHUB_ACTIVITY_INTERVAL": str(activity_interval(settings.cull_idle_seconds)),
    }
    c.JupyterHub.load_roles.append(
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )
    c.JupyterHub.services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "mlhub.services.idle_culler",  # jupyterhub_idle_culler, ending with the hub
                f"--timeout={settings.cull_idle_seconds}",
                f"--cull-every={max(1, min(settings.cull_idle_seconds // 2, 300))}",
            ],
            "environment": {"MLHUB_HUB_PID": _passed_through_env["MLHUB_HUB_PID"]},
        }
    )

# --- The hub's pages: MLHub's Workspaces page and what its templates need ----------------
from mlhub.hub.pages import ui_handlers, workspace_describer  # noqa: E402

c.JupyterHub.extra_handlers = ui_handlers()

# --- The admin's own overrides, loaded last ---------------------------------------------
if settings.user_config:
    from mlhub.hub.helm_values import forget_native_only_settings  # noqa: E402

    _authenticator_before = c.JupyterHub.get("authenticator_class")
    load_subconfig(settings.user_config)  # noqa: F821
    # another authenticator chosen there must not inherit the sign-up's allow_all/admin_users
    forget_native_only_settings(c, {}, _authenticator_before, source="MLHUB_USER_CONFIG")

# After the overrides, so the pages follow an authenticator the admin put in its place.
_template_vars = c.JupyterHub.template_vars if "template_vars" in c.JupyterHub else {}
c.JupyterHub.template_vars = {
    "mlhub_describe": workspace_describer,
    "mlhub": {
        "self_service": settings.self_service,
        "native_auth": c.JupyterHub.authenticator_class == "mlhub-native",
        "ssh_enabled": settings.start_ssh,
        "ssh_port": _public_port if _shared_port else settings.ssh_port,
        "ssh_host": settings.ssh_public_host,
        "single_origin_warning": "" if settings.user_subdomains else SINGLE_ORIGIN_WARNING,
        "cull_idle_seconds": settings.cull_idle_seconds,
    },
    **(_template_vars if isinstance(_template_vars, dict) else {}),
}

# --- Helm values (hub.config, hub.extraConfig, workspaces.*), on Kubernetes only ----------
# mlhub/hub/helm_values.py; the chart sets MLHUB_HELM_VALUES_DIR. Applied last, as in z2jh.
from mlhub.hub.helm_values import apply_helm_values  # noqa: E402

apply_helm_values(c, settings.helm_values_dir)
