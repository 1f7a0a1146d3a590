# MLHub's default JupyterHub configuration.
#
# Works as shipped: `jupyterhub -f jupyterhub_config.py` (what scripts/start-hub.sh runs).
# Every setting below can be changed with an environment variable (see the README's table);
# they are read and validated once, by mlhubspawner.settings.read_settings.
# Put your own overrides in a file named by MLHUB_USER_CONFIG; it is loaded last.

import os
import sys

from mlhubspawner.settings import MIN_PASSWORD_LENGTH, SettingsError, read_settings

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)

_here = os.path.dirname(os.path.abspath(__file__))
try:
    settings = read_settings(os.environ, default_data_dir=os.path.join(_here, ".mlhub", "data"))
except SettingsError as exc:
    sys.exit(f"MLHub cannot start, invalid environment variables:\n{exc}")

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
    import ipaddress
    import socket

    import docker

    try:
        client = docker.from_env(timeout=10)
        ipam = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
        # Docker 20.10 omits the default bridge's gateway: it is the subnet's first address.
        gateway = ipam.get("Gateway") or str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))
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
c.JupyterHub.ip = settings.ip
c.JupyterHub.port = settings.port
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
c.JupyterHub.db_url = settings.db_url
c.JupyterHub.cookie_secret_file = os.path.join(settings.data_dir, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = os.path.join(settings.data_dir, "jupyterhub-proxy.pid")
# Workspaces keep running when the hub stops or restarts.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = settings.named_server_limit

# --- Who can log in: sign-up, admin authorizes ------------------------------------------
import nativeauthenticator  # noqa: E402

c.JupyterHub.authenticator_class = "mlhub-native"
c.Authenticator.admin_users = {settings.admin_user}
# NativeAuthenticator only lets authorized accounts log in; that is the allow list.
c.Authenticator.allow_all = True
c.MLHubNativeAuthenticator.initial_admin_password = settings.admin_password
# Without MLHUB_ADMIN_PASSWORD the hub generates one there at first start (and logs where).
c.MLHubNativeAuthenticator.initial_admin_password_file = os.path.join(settings.data_dir, "initial-admin-password")
# NativeAuthenticator accepts 1-character passwords by default.
c.NativeAuthenticator.minimum_password_length = MIN_PASSWORD_LENGTH
# A name is locked for a while after repeated wrong passwords (0: never), and each client
# address may post the login and sign-up forms only so often per minute (0: no limit).
c.NativeAuthenticator.allowed_failed_logins = settings.login_max_failures
c.NativeAuthenticator.seconds_before_next_try = settings.login_lockout_seconds
c.MLHubNativeAuthenticator.login_rate_limit = settings.login_rate_limit
# MLHub's page templates: resources/templates in the repository, templates/ next to this
# file in the hub image.
_templates = next(
    (p for p in (os.path.join(_here, "resources", "templates"), os.path.join(_here, "templates")) if os.path.isdir(p)),
    os.path.join(_here, "resources", "templates"),
)
c.JupyterHub.template_paths = [
    _templates,
    os.path.join(os.path.dirname(nativeauthenticator.__file__), "templates"),
]

# --- Workspaces -------------------------------------------------------------------------
c.JupyterHub.spawner_class = "mlhub-docker" if _docker_mode else "mlhub-kubernetes"
c.MLHubSpawner.hub_name = settings.hub_name
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
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60

# Where the proxy reaches the hub's services: on loopback, unless the proxy runs in its own
# pod (Kubernetes), which reaches them through the hub's Service.
_service_host = settings.hub_connect_host if (settings.proxy_api_url and settings.hub_connect_host) else "127.0.0.1"

# Services get a clean environment; these tell them where the engine / API server is.
_passed_through_env = {
    name: os.environ[name]
    for name in ("DOCKER_HOST", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
    if os.environ.get(name)
}

# --- Services: cleanup (always), SSH gateway (START_SSH), idle culling (optional) --------
c.JupyterHub.services = [
    {
        "name": "cleanup-service",
        "url": f"http://{_service_host}:{settings.cleanup_port}",
        "command": [sys.executable, "-m", "cleanup_service"],
        "environment": {
            "HUB_NAME": settings.hub_name,
            "CLEANUP_INTERVAL_SECONDS": str(settings.cleanup_interval),
            "MLHUB_EXECUTION_MODE": settings.execution_mode,
            "MLHUB_NAMESPACE": settings.namespace or "default",
            **_passed_through_env,
        },
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
if settings.start_ssh:
    c.JupyterHub.services.append(
        {
            "name": "ssh",
            "url": f"http://{_service_host}:{settings.ssh_service_port}",
            "command": [sys.executable, "-m", "ssh_gateway"],
            "environment": {
                "HUB_NAME": settings.hub_name,
                "MLHUB_DATA_DIR": settings.data_dir,
                "MLHUB_SSH_IP": settings.ip,
                "MLHUB_SSH_PORT": str(settings.ssh_port),
                "MLHUB_SSH_PUBLIC_HOST": settings.ssh_public_host,
                "MLHUB_SSH_TOKEN_AUTH": str(settings.ssh_token_auth).lower(),
                "MLHUB_EXECUTION_MODE": settings.execution_mode,
                "MLHUB_NAMESPACE": settings.namespace or "default",
                **_passed_through_env,
            },
            "oauth_no_confirm": True,
            "display": True,
        }
    )
    c.JupyterHub.load_roles.append(
        {
            "name": "ssh-gateway",
            # read:servers + admin:server_state: which container a running server is
            "scopes": ["list:users", "read:users", "read:servers", "admin:server_state"],
            "services": ["ssh"],
        }
    )
    # Every user may use the SSH page and keys API (browsers via OAuth, scripts via tokens).
    c.JupyterHub.load_roles.append({"name": "user", "scopes": ["self", "access:services!service=ssh"]})
if settings.cull_idle_seconds:
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
                "jupyterhub_idle_culler",
                f"--timeout={settings.cull_idle_seconds}",
                f"--cull-every={max(1, min(settings.cull_idle_seconds // 2, 300))}",
            ],
        }
    )

# --- The hub's pages: MLHub's Workspaces page and what its templates need ----------------
from mlhubspawner.ui import ui_handlers, workspace_describer  # noqa: E402

c.JupyterHub.extra_handlers = ui_handlers()

# --- The admin's own overrides, loaded last ---------------------------------------------
if settings.user_config:
    load_subconfig(settings.user_config)  # noqa: F821

# After the overrides, so the pages follow an authenticator the admin put in its place.
_template_vars = c.JupyterHub.template_vars if "template_vars" in c.JupyterHub else {}
c.JupyterHub.template_vars = {
    "mlhub_describe": workspace_describer,
    "mlhub": {
        "self_service": settings.self_service,
        "native_auth": c.JupyterHub.authenticator_class == "mlhub-native",
        "ssh_enabled": settings.start_ssh,
        "ssh_port": settings.ssh_port,
        "ssh_host": settings.ssh_public_host,
    },
    **(_template_vars if isinstance(_template_vars, dict) else {}),
}
