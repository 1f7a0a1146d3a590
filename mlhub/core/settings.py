"""The hub's environment variables, read and validated once, at start.

:data:`TABLE` lists every variable once: its field, parser, and which processes receive it
(the hub, the cleanup service, the SSH gateway). ``read_settings(os.environ)`` (the hub:
``jupyterhub_config.py`` and the hub container's entrypoint) returns :class:`HubSettings` or
raises :class:`SettingsError` naming every bad variable and what it allows; the hub passes each
service :func:`service_environment`, which the service reads with :func:`read_service_settings`.
The services' JupyterHub variables (``JUPYTERHUB_API_URL`` ...) are JupyterHub's, read by
``mlhub.services.*.config``. The README's tables list the same variables (a unit test holds them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from mlhub.core.errors import MultilineFieldErrors
from mlhub.core.fair_defaults import (
    DEFAULT_NAMED_SERVER_LIMIT,
    DEFAULT_PIDS_LIMIT,
    DEFAULT_WORKSPACE_DISK_LIMIT,
)
from mlhub.core.identity_settings import IdentitySettings, read_identity_settings
from mlhub.core.parsing import parse_bool, parse_cpu
from mlhub.core.setting_parsers import (
    _deleted_user_volumes,
    _dns_label,
    _execution_mode,
    _existing_file,
    _host,
    _http_url,
    _hub_name,
    _images,
    _install_id,
    _int_range,
    _interval,
    _is_ip,
    _json_labels,
    _json_tolerations,
    _memory,
    _non_negative,
    _nonempty,
    _positive,
    _public_url,
    _quantity,
    _size_or_off,
)


class SettingsError(MultilineFieldErrors):
    """One or more environment variables are invalid."""


#: Idle culling is on by default: a workspace with no activity for a day is stopped
#: (docs/decisions/idle-culling.md says why a day). MLHUB_CULL_IDLE_SECONDS=0 turns it off.
DEFAULT_CULL_IDLE_SECONDS = 86400
#: Shortest idle timeout accepted (other than 0): activity is reported every quarter of it.
MIN_CULL_IDLE_SECONDS = 10


@dataclass(frozen=True)
class HubSettings:
    hub_name: str = "mlhub"
    data_dir: str = ""
    db_url: str = ""
    ip: str = ""
    port: int = 8080
    hub_ip: str = ""
    admin_user: str = "admin"
    admin_password: str = ""
    workspace_image: str = "mlhub/workspace:latest"
    allowed_images: tuple[str, ...] = ()
    allow_custom_image: bool = False
    default_cpu_limit: float | None = None
    max_cpu_limit: float | None = None
    default_mem_limit: int | None = None
    max_mem_limit: int | None = None
    max_gpus: int | None = None
    default_days_to_live: float = 0.0
    max_days_to_live: float | None = None
    named_server_limit: int = DEFAULT_NAMED_SERVER_LIMIT
    self_service: bool = True
    cull_idle_seconds: int = DEFAULT_CULL_IDLE_SECONDS
    user_config: str = ""
    cleanup_interval: int = 3600
    cleanup_port: int = 8091
    execution_mode: str = "docker"
    ssl_enabled: bool = False
    ssl_cert: str = ""
    ssl_key: str = ""
    start_jhub: bool = True
    start_chp: bool = False
    start_ssh: bool = True
    ssh_port: int = 2222
    ssh_public_host: str = ""
    ssh_token_auth: bool = True
    ssh_service_port: int = 8092
    ssh_keys_db_url: str = ""
    namespace: str = ""
    hub_connect_host: str = ""
    proxy_api_url: str = ""
    proxy_api_ip: str = "127.0.0.1"
    hub_url: str = "http://127.0.0.1:8081"
    storage_class: str = ""
    volume_size: str = "10Gi"
    gpu_node_selector: tuple[tuple[str, str], ...] = ()
    gpu_tolerations: tuple[tuple[tuple[str, Any], ...], ...] = ()
    public_url: str = ""
    user_subdomains: bool = True
    # ownership (docs/decisions/ownership.md)
    install_id: str = ""
    deleted_user_volumes: str = "remove"
    # fair limits per workspace (docs/decisions/fair-defaults.md, workspace-disk-limit.md)
    pids_limit: int = DEFAULT_PIDS_LIMIT
    workspace_disk_limit: int = DEFAULT_WORKSPACE_DISK_LIMIT
    no_new_privileges: bool = True
    # logins (docs/security.md)
    login_max_failures: int = 5
    login_lockout_seconds: int = 600
    login_rate_limit: int = 60
    # who logs in: MLHUB_AUTHENTICATOR and its identity provider (the block at the end)
    identity: IdentitySettings = field(default_factory=lambda: IdentitySettings())
    helm_values_dir: str = ""
    # --- SSH on the hub's one port (docs/decisions/ssh-on-one-port.md) ---
    # None: on when SSL is on (and the hub starts the proxy and the SSH gateway)
    ssh_shared_port: bool | None = None
    proxy_internal_port: int = 8443
    port_mux_max_connections: int = 1024

    @property
    def public_host(self) -> str:
        """Host name of the public URL (no port): the hub's domain, parent of the users' ones."""
        return urlparse(self.public_url).hostname or ""

    @property
    def public_https(self) -> bool:
        return self.public_url.startswith("https://")


def _cull_idle_seconds(text: str) -> int:
    allowed = f"must be 0 (off) or a whole number of seconds >= {MIN_CULL_IDLE_SECONDS}"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(allowed) from None
    if value != 0 and value < MIN_CULL_IDLE_SECONDS:
        raise ValueError(allowed)
    return value


def activity_interval(cull_idle_seconds: int) -> int:
    """How often workspaces and the SSH gateway tell the hub about activity: a quarter of
    the idle timeout, at most JupyterHub's 300 s default (so a busy workspace is seen as
    active well before the culler's next look)."""
    if cull_idle_seconds <= 0:
        return 300
    return max(1, min(300, cull_idle_seconds // 4))


def default_public_url(port: int, ssl_enabled: bool) -> str:
    """``http(s)://localhost[:port]``: browsers resolve ``*.localhost`` to loopback, so per-user
    origins work on the quick start without any DNS set-up."""
    scheme = "https" if ssl_enabled else "http"
    default_port = 443 if ssl_enabled else 80
    return f"{scheme}://localhost" + ("" if port == default_port else f":{port}")


#: Shortest password the hub accepts (NativeAuthenticator's minimum_password_length).
MIN_PASSWORD_LENGTH = 8


def _password(text: str) -> str:
    if text and len(text) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"must be empty (a password is generated) or at least {MIN_PASSWORD_LENGTH} characters"
        )
    return text


HUB = frozenset({"hub"})
HUB_CLEANUP = frozenset({"hub", "cleanup"})
HUB_SSH = frozenset({"hub", "ssh"})
SSH = frozenset({"ssh"})
ALL = frozenset({"hub", "cleanup", "ssh"})
SERVICES = ("cleanup", "ssh")


@dataclass(frozen=True)
class Variable:
    """One environment variable: its :class:`HubSettings` field, parser, and the processes that
    use it. The hub reads every variable and passes each service those it receives."""

    name: str
    field: str
    parse: Callable[[str], Any]
    receivers: frozenset[str] = HUB
    #: older names still read (the first one set wins after *name*)
    aliases: tuple[str, ...] = ()


#: Every MLHub variable, once. The README's tables list the same (tests/unit/test_settings_table.py).
TABLE: tuple[Variable, ...] = (
    Variable("HUB_NAME", "hub_name", _hub_name, ALL),
    Variable("MLHUB_DATA_DIR", "data_dir", _nonempty, HUB_SSH),
    Variable("MLHUB_DB_URL", "db_url", _nonempty),
    Variable("MLHUB_IP", "ip", str.strip, HUB_SSH),
    Variable("MLHUB_PORT", "port", _int_range(1, 65535), HUB_SSH),
    Variable("MLHUB_HUB_IP", "hub_ip", _nonempty),
    Variable("MLHUB_ADMIN_USER", "admin_user", _nonempty),
    Variable("MLHUB_ADMIN_PASSWORD", "admin_password", _password),
    Variable("MLHUB_WORKSPACE_IMAGE", "workspace_image", _nonempty),
    Variable("MLHUB_ALLOWED_IMAGES", "allowed_images", _images),
    Variable("MLHUB_ALLOW_CUSTOM_IMAGE", "allow_custom_image", parse_bool),
    Variable("MLHUB_DEFAULT_CPU_LIMIT", "default_cpu_limit", parse_cpu),
    Variable("MLHUB_MAX_CPU_LIMIT", "max_cpu_limit", parse_cpu),
    Variable("MLHUB_DEFAULT_MEM_LIMIT", "default_mem_limit", _memory),
    Variable("MLHUB_MAX_MEM_LIMIT", "max_mem_limit", _memory),
    Variable("MLHUB_MAX_GPUS", "max_gpus", _int_range(0)),
    Variable("MLHUB_DEFAULT_DAYS_TO_LIVE", "default_days_to_live", _non_negative),
    Variable("MLHUB_MAX_DAYS_TO_LIVE", "max_days_to_live", _positive),
    Variable("MLHUB_NAMED_SERVER_LIMIT", "named_server_limit", _int_range(0)),
    Variable("MLHUB_SELF_SERVICE", "self_service", parse_bool),
    Variable("MLHUB_CULL_IDLE_SECONDS", "cull_idle_seconds", _cull_idle_seconds, HUB_SSH),
    Variable("MLHUB_USER_CONFIG", "user_config", _existing_file),
    Variable("CLEANUP_INTERVAL_SECONDS", "cleanup_interval", _interval, HUB_CLEANUP),
    Variable("MLHUB_CLEANUP_PORT", "cleanup_port", _int_range(1, 65535)),
    Variable("EXECUTION_MODE", "execution_mode", _execution_mode, ALL, aliases=("MLHUB_EXECUTION_MODE",)),
    Variable("SSL_ENABLED", "ssl_enabled", parse_bool, HUB_SSH),
    Variable("MLHUB_SSL_CERT", "ssl_cert", _existing_file),
    Variable("MLHUB_SSL_KEY", "ssl_key", _existing_file),
    Variable("START_JHUB", "start_jhub", parse_bool),
    Variable("START_CHP", "start_chp", parse_bool, HUB_SSH),
    Variable("START_SSH", "start_ssh", parse_bool, HUB_SSH),
    Variable("MLHUB_SSH_PORT", "ssh_port", _int_range(1, 65535), HUB_SSH),
    Variable("MLHUB_SSH_PUBLIC_HOST", "ssh_public_host", _nonempty, HUB_SSH),
    Variable("MLHUB_SSH_TOKEN_AUTH", "ssh_token_auth", parse_bool, HUB_SSH),
    Variable("MLHUB_SSH_SERVICE_PORT", "ssh_service_port", _int_range(1, 65535)),
    Variable("MLHUB_SSH_KEYS_DB_URL", "ssh_keys_db_url", _nonempty, SSH),
    Variable("MLHUB_NAMESPACE", "namespace", _dns_label, ALL),
    Variable("MLHUB_HUB_CONNECT_HOST", "hub_connect_host", _host),
    Variable("MLHUB_PROXY_API_URL", "proxy_api_url", _http_url, HUB_SSH),
    Variable("MLHUB_PROXY_API_IP", "proxy_api_ip", _host),
    Variable("MLHUB_HUB_URL", "hub_url", _http_url),
    Variable("MLHUB_STORAGE_CLASS", "storage_class", _nonempty),
    Variable("MLHUB_VOLUME_SIZE", "volume_size", _quantity),
    Variable("MLHUB_GPU_NODE_SELECTOR", "gpu_node_selector", _json_labels),
    Variable("MLHUB_GPU_TOLERATIONS", "gpu_tolerations", _json_tolerations),
    Variable("MLHUB_PUBLIC_URL", "public_url", _public_url, HUB_SSH),
    Variable("MLHUB_USER_SUBDOMAINS", "user_subdomains", parse_bool),
    Variable("MLHUB_INSTALL_ID", "install_id", _install_id, HUB_CLEANUP),
    Variable("MLHUB_DELETED_USER_VOLUMES", "deleted_user_volumes", _deleted_user_volumes, HUB_CLEANUP),
    Variable("MLHUB_PIDS_LIMIT", "pids_limit", _int_range(0)),
    Variable("MLHUB_WORKSPACE_DISK_LIMIT", "workspace_disk_limit", _size_or_off),
    Variable("MLHUB_NO_NEW_PRIVILEGES", "no_new_privileges", parse_bool),
    Variable("MLHUB_LOGIN_MAX_FAILURES", "login_max_failures", _int_range(0, 1000)),
    Variable("MLHUB_LOGIN_LOCKOUT_SECONDS", "login_lockout_seconds", _int_range(1, 86400)),
    Variable("MLHUB_LOGIN_RATE_LIMIT", "login_rate_limit", _int_range(0, 100000)),
    # the chart's values for hub.config/extraConfig/workspaces.* (mlhub/hub/helm_values.py)
    Variable("MLHUB_HELM_VALUES_DIR", "helm_values_dir", _nonempty),
    # SSH on the hub's one port (docs/decisions/ssh-on-one-port.md)
    Variable("MLHUB_SSH_SHARED_PORT", "ssh_shared_port", parse_bool, HUB_SSH),
    Variable("MLHUB_PROXY_INTERNAL_PORT", "proxy_internal_port", _int_range(1, 65535), HUB_SSH),
    Variable("MLHUB_PORT_MUX_MAX_CONNECTIONS", "port_mux_max_connections", _int_range(1, 100000)),
)


# --- SSH on the hub's one port (docs/decisions/ssh-on-one-port.md) ---------------------
def shared_port_errors(settings: HubSettings) -> dict[str, str]:
    """Why MLHUB_SSH_SHARED_PORT=true cannot work with the other settings (empty: it can)."""
    if settings.ssh_shared_port is not True:
        return {}
    if not settings.start_ssh:
        return {"MLHUB_SSH_SHARED_PORT": "needs the SSH gateway (START_SSH=true)"}
    if settings.start_chp or settings.proxy_api_url:
        return {
            "MLHUB_SSH_SHARED_PORT": "needs the proxy started by the hub (not START_CHP or "
            "MLHUB_PROXY_API_URL); where the proxy runs apart, use the WebSocket tunnel"
        }
    if settings.proxy_internal_port in (settings.port, settings.ssh_port):
        return {"MLHUB_PROXY_INTERNAL_PORT": "must differ from MLHUB_PORT and MLHUB_SSH_PORT"}
    return {}


def shared_port_on(settings: HubSettings) -> bool:
    """Whether the port multiplexer holds the public port (SSH and HTTP(S) on it): as set, or
    by default when SSL is on, the SSH gateway runs and the hub starts the proxy itself."""
    if settings.ssh_shared_port is not None:
        return settings.ssh_shared_port
    return (
        settings.ssl_enabled
        and settings.start_ssh
        and not (settings.start_chp or settings.proxy_api_url)
        and settings.proxy_internal_port not in (settings.port, settings.ssh_port)
    )


VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {v.name: (v.field, v.parse) for v in TABLE}


def _read(environ: Mapping[str, str], variables: Iterable[Variable]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parsed values by field, and errors by the variable's name as it was set."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for variable in variables:
        for name in (variable.name, *variable.aliases):
            raw = environ.get(name)
            if raw is not None and (raw.strip() != "" or name == "MLHUB_ADMIN_PASSWORD"):
                break
        else:
            continue
        try:
            values[variable.field] = variable.parse(raw)
        except ValueError as exc:
            errors[name] = f"{exc} (got {raw[:60]!r})"
    return values, errors


def read_service_settings(environ: Mapping[str, str], service: str) -> HubSettings:
    """The variables *service* receives (the table's ``receivers``), read as the hub reads them;
    the others keep their defaults."""
    values, errors = _read(environ, (v for v in TABLE if service in v.receivers))
    if errors:
        raise SettingsError(errors)
    return HubSettings(**values)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def service_environment(settings: HubSettings, service: str) -> dict[str, str]:
    """What the hub passes *service*: every variable it receives, as the hub has it (unset
    ones, empty or None, stay unset so the service takes the same default)."""
    return {
        v.name: _text(getattr(settings, v.field))
        for v in TABLE
        if service in v.receivers and getattr(settings, v.field) not in (None, "")
    }


def read_settings(environ: Mapping[str, str], default_data_dir: str) -> HubSettings:
    """Read every MLHub variable from *environ*; unset or empty means the default."""
    values, errors = _read(environ, TABLE)
    settings = HubSettings(**values)
    if (
        settings.max_cpu_limit
        and settings.default_cpu_limit
        and settings.default_cpu_limit > settings.max_cpu_limit
    ):
        errors["MLHUB_DEFAULT_CPU_LIMIT"] = "must not be more than MLHUB_MAX_CPU_LIMIT"
    if (
        settings.max_mem_limit
        and settings.default_mem_limit
        and settings.default_mem_limit > settings.max_mem_limit
    ):
        errors["MLHUB_DEFAULT_MEM_LIMIT"] = "must not be more than MLHUB_MAX_MEM_LIMIT"
    if settings.max_days_to_live and settings.default_days_to_live > settings.max_days_to_live:
        errors["MLHUB_DEFAULT_DAYS_TO_LIVE"] = "must not be more than MLHUB_MAX_DAYS_TO_LIVE"
    if (
        settings.ssl_enabled
        and not (settings.ssl_cert and settings.ssl_key)
        and "MLHUB_SSL_CERT" not in errors
    ):
        errors["SSL_ENABLED"] = (
            "needs MLHUB_SSL_CERT and MLHUB_SSL_KEY (the hub container sets them: a mounted "
            "/resources/ssl/cert.crt and cert.key, or a generated certificate)"
        )
    if (
        settings.user_subdomains
        and settings.public_url
        and _is_ip(urlparse(settings.public_url).hostname or "")
    ):
        errors["MLHUB_PUBLIC_URL"] = (
            "per-user origins need a host name with wildcard DNS (an IP address has no subdomains); "
            "use a name such as localhost or hub.example.org, or set MLHUB_USER_SUBDOMAINS=false"
        )
    errors.update(shared_port_errors(settings))
    if not (settings.start_jhub or settings.start_chp):
        errors["START_JHUB"] = "START_JHUB and START_CHP are both false: nothing to start"
    identity = read_identity_settings(environ, errors)
    if errors:
        raise SettingsError(errors)
    data_dir = settings.data_dir or default_data_dir
    db_url = settings.db_url or "sqlite:///" + os.path.join(data_dir, "jupyterhub.sqlite")
    public_url = settings.public_url or default_public_url(settings.port, settings.ssl_enabled)
    return HubSettings(
        **{
            **settings.__dict__,
            "data_dir": data_dir,
            "db_url": db_url,
            "public_url": public_url,
            "identity": identity,
        }
    )


def ssh_public_port(settings: HubSettings) -> int:
    """The port users give ssh: the hub's public one when SSH shares it, else MLHUB_SSH_PORT
    (the gateway and the hub's pages compute it alike from the variables both receive)."""
    if not shared_port_on(settings):
        return settings.ssh_port
    return urlparse(settings.public_url).port or (443 if settings.public_url.startswith("https:") else 80)


#: ML Hub's variables that MLHub does not read, and what to do instead
#: (docs/migrating-from-ml-hub.md): named in a warning at start rather than silently ignored.
ML_HUB_ONLY_VARIABLES: dict[str, str] = {
    "START_NGINX": "there is no nginx: tools go through the hub's proxy, SSH through the gateway",
    "DEFAULT_WORKSPACE_PORT": "workspaces listen where JupyterHub tells them (c.Spawner.port)",
    "DYNAMIC_WHITELIST_ENABLED": "authorize users on /hub/authorize (or c.Authenticator.allowed_users)",
    "IS_CLEANUP_SERVICE_ENABLED": "the cleanup service always runs; CLEANUP_INTERVAL_SECONDS=-1 stops its periodic runs",
    "DATA_VOLUME_CONTAINER": "use MLHUB_DATA_DIR",
    "SSH_PERMIT_TARGET_HOST": "the SSH gateway reaches a user's own workspaces through the engine",
    "SSH_PERMIT_TARGET_PORT": "the SSH gateway reaches a user's own workspaces through the engine",
    "SSH_TARGET_LABELS": "the SSH gateway reaches a user's own workspaces through the engine",
    "SSH_TARGET_PUBLICKEY_API_PORT": "users register keys on the SSH page",
    "SSH_TARGET_KEY_PATH": "users register keys on the SSH page",
    "MANUAL_AUTH_FILE": "users register keys on the SSH page",
}


def ml_hub_leftovers(environ: Mapping[str, str]) -> list[str]:
    """One line per ML Hub variable set in *environ* that MLHub ignores (empty: none)."""
    return [
        f"{name} is ML Hub's and ignored by MLHub: {advice} (docs/migrating-from-ml-hub.md)"
        for name, advice in ML_HUB_ONLY_VARIABLES.items()
        if name in environ
    ]
