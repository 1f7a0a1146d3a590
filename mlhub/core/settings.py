"""The hub's environment variables, read and validated once, at start.

``read_settings(os.environ)`` returns :class:`HubSettings` or raises :class:`SettingsError`
naming every bad variable and what it allows. ``jupyterhub_config.py`` is its only caller;
nothing else in MLHub reads ``os.environ``. The README's table lists the same variables.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from mlhub.core.errors import MultilineFieldErrors
from mlhub.core.fair_defaults import (
    DEFAULT_NAMED_SERVER_LIMIT,
    DEFAULT_PIDS_LIMIT,
    DEFAULT_WORKSPACE_DISK_LIMIT,
)
from mlhub.core.names import is_valid_hub_name, is_valid_install_id
from mlhub.core.ownership import DELETED_USER_VOLUMES
from mlhub.core.parsing import parse_bool, parse_cpu, parse_memory


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


def _int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be between {low} and {high}" if high else f"must be >= {low}")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number >= 0")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise ValueError("must be a number > 0")
    return value


def _hub_name(text: str) -> str:
    if not is_valid_hub_name(text):
        raise ValueError(
            "must be 1-12 lowercase letters, digits or '-', starting and ending with a letter or digit"
        )
    return text


def _images(text: str) -> tuple[str, ...]:
    images = tuple(part.strip() for part in text.split(",") if part.strip())
    if not images:
        raise ValueError("must be a comma-separated list of images")
    return images


def _nonempty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def _interval(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError("must be a whole number of seconds > 0, or -1 for off") from None
    if value == 0 or value < -1:
        raise ValueError("must be a whole number of seconds > 0, or -1 for off")
    return value


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


def _execution_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode == "local":  # ML Hub's name for the Docker mode
        mode = "docker"
    if mode not in ("docker", "k8s"):
        raise ValueError("must be docker or k8s")
    return mode


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise ValueError("must name an existing file")
    return text


_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _quantity(text: str) -> str:
    text = text.strip()
    if not _QUANTITY.match(text):
        raise ValueError("must be a Kubernetes quantity like 10Gi or 500Mi")
    return text


def _dns_label(text: str) -> str:
    text = text.strip()
    if not _DNS_LABEL.match(text):
        raise ValueError("must be a Kubernetes name: lowercase letters, digits and '-', at most 63")
    return text


def _http_url(text: str) -> str:
    text = text.strip()
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return text.rstrip("/")


def _host(text: str) -> str:
    text = text.strip()
    if not text or any(ch in text for ch in "/: ") and not text.startswith("["):
        raise ValueError("must be a host name or IP address (no scheme, port or path)")
    return text


def _public_url(text: str) -> str:
    text = text.strip().rstrip("/")
    parsed = urlparse(text)
    message = "must be the URL people open, http:// or https:// with a host name and no path, e.g. https://hub.example.org"
    try:
        parsed.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError(message) from None
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or parsed.path
        or parsed.query
        or parsed.fragment
    ):
        raise ValueError(message)
    if parsed.username or parsed.password:
        raise ValueError(message)
    return text


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def default_public_url(port: int, ssl_enabled: bool) -> str:
    """``http(s)://localhost[:port]``: browsers resolve ``*.localhost`` to loopback, so per-user
    origins work on the quick start without any DNS set-up."""
    scheme = "https" if ssl_enabled else "http"
    default_port = 443 if ssl_enabled else 80
    return f"{scheme}://localhost" + ("" if port == default_port else f":{port}")


def _json_labels(text: str) -> tuple[tuple[str, str], ...]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError('must be a JSON object of strings, e.g. {"accelerator": "nvidia"}') from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError('must be a JSON object of strings, e.g. {"accelerator": "nvidia"}')
    return tuple(sorted(value.items()))


def _json_tolerations(text: str) -> tuple[tuple[tuple[str, Any], ...], ...]:
    allowed = {"key", "operator", "value", "effect", "tolerationSeconds"}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(t, dict) and set(t) <= allowed for t in value):
        raise ValueError(
            'must be a JSON list of tolerations, e.g. [{"key": "nvidia.com/gpu", "operator": "Exists", '
            '"effect": "NoSchedule"}] (fields: key, operator, value, effect, tolerationSeconds)'
        )
    return tuple(tuple(sorted(t.items())) for t in value)


def _install_id(text: str) -> str:
    text = text.strip()
    if not is_valid_install_id(text):
        raise ValueError(
            "must be 8-40 lowercase letters or digits (this install's id; empty: generated into MLHUB_DATA_DIR)"
        )
    return text


def _deleted_user_volumes(text: str) -> str:
    value = text.strip().lower()
    if value not in DELETED_USER_VOLUMES:
        raise ValueError(f"must be {' or '.join(DELETED_USER_VOLUMES)}")
    return value


#: Shortest password the hub accepts (NativeAuthenticator's minimum_password_length).
MIN_PASSWORD_LENGTH = 8


def _password(text: str) -> str:
    if text and len(text) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"must be empty (a password is generated) or at least {MIN_PASSWORD_LENGTH} characters"
        )
    return text


def _memory(text: str) -> int:
    return parse_memory(text)


def _size_or_off(text: str) -> int:
    """A size like 10g, or 0 for off."""
    if text.strip() == "0":
        return 0
    try:
        size = parse_memory(text)
    except ValueError:
        size = 0
    if size < 16 * 1024**2:
        raise ValueError("must be a size of at least 16m such as 10g or 500m, or 0 for no cap")
    return size


# --- SSH on the hub's one port (docs/decisions/ssh-on-one-port.md) ---------------------
SHARED_PORT_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "MLHUB_SSH_SHARED_PORT": ("ssh_shared_port", parse_bool),
    "MLHUB_PROXY_INTERNAL_PORT": ("proxy_internal_port", _int_range(1, 65535)),
    "MLHUB_PORT_MUX_MAX_CONNECTIONS": ("port_mux_max_connections", _int_range(1, 100000)),
}


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


# --- end of the SSH-on-one-port block ---------------------------------------------------

# variable -> (settings field, parser)
VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "HUB_NAME": ("hub_name", _hub_name),
    "MLHUB_DATA_DIR": ("data_dir", _nonempty),
    "MLHUB_DB_URL": ("db_url", _nonempty),
    "MLHUB_IP": ("ip", str.strip),
    "MLHUB_PORT": ("port", _int_range(1, 65535)),
    "MLHUB_HUB_IP": ("hub_ip", _nonempty),
    "MLHUB_ADMIN_USER": ("admin_user", _nonempty),
    "MLHUB_ADMIN_PASSWORD": ("admin_password", _password),
    "MLHUB_WORKSPACE_IMAGE": ("workspace_image", _nonempty),
    "MLHUB_ALLOWED_IMAGES": ("allowed_images", _images),
    "MLHUB_ALLOW_CUSTOM_IMAGE": ("allow_custom_image", parse_bool),
    "MLHUB_DEFAULT_CPU_LIMIT": ("default_cpu_limit", parse_cpu),
    "MLHUB_MAX_CPU_LIMIT": ("max_cpu_limit", parse_cpu),
    "MLHUB_DEFAULT_MEM_LIMIT": ("default_mem_limit", _memory),
    "MLHUB_MAX_MEM_LIMIT": ("max_mem_limit", _memory),
    "MLHUB_MAX_GPUS": ("max_gpus", _int_range(0)),
    "MLHUB_DEFAULT_DAYS_TO_LIVE": ("default_days_to_live", _non_negative),
    "MLHUB_MAX_DAYS_TO_LIVE": ("max_days_to_live", _positive),
    "MLHUB_NAMED_SERVER_LIMIT": ("named_server_limit", _int_range(0)),
    "MLHUB_SELF_SERVICE": ("self_service", parse_bool),
    "MLHUB_CULL_IDLE_SECONDS": ("cull_idle_seconds", _cull_idle_seconds),
    "MLHUB_USER_CONFIG": ("user_config", _existing_file),
    "CLEANUP_INTERVAL_SECONDS": ("cleanup_interval", _interval),
    "MLHUB_CLEANUP_PORT": ("cleanup_port", _int_range(1, 65535)),
    "EXECUTION_MODE": ("execution_mode", _execution_mode),
    "SSL_ENABLED": ("ssl_enabled", parse_bool),
    "MLHUB_SSL_CERT": ("ssl_cert", _existing_file),
    "MLHUB_SSL_KEY": ("ssl_key", _existing_file),
    "START_JHUB": ("start_jhub", parse_bool),
    "START_CHP": ("start_chp", parse_bool),
    "START_SSH": ("start_ssh", parse_bool),
    "MLHUB_SSH_PORT": ("ssh_port", _int_range(1, 65535)),
    "MLHUB_SSH_PUBLIC_HOST": ("ssh_public_host", _nonempty),
    "MLHUB_SSH_TOKEN_AUTH": ("ssh_token_auth", parse_bool),
    "MLHUB_SSH_SERVICE_PORT": ("ssh_service_port", _int_range(1, 65535)),
    "MLHUB_NAMESPACE": ("namespace", _dns_label),
    "MLHUB_HUB_CONNECT_HOST": ("hub_connect_host", _host),
    "MLHUB_PROXY_API_URL": ("proxy_api_url", _http_url),
    "MLHUB_PROXY_API_IP": ("proxy_api_ip", _host),
    "MLHUB_HUB_URL": ("hub_url", _http_url),
    "MLHUB_STORAGE_CLASS": ("storage_class", _nonempty),
    "MLHUB_VOLUME_SIZE": ("volume_size", _quantity),
    "MLHUB_GPU_NODE_SELECTOR": ("gpu_node_selector", _json_labels),
    "MLHUB_GPU_TOLERATIONS": ("gpu_tolerations", _json_tolerations),
    "MLHUB_PUBLIC_URL": ("public_url", _public_url),
    "MLHUB_USER_SUBDOMAINS": ("user_subdomains", parse_bool),
    "MLHUB_INSTALL_ID": ("install_id", _install_id),
    "MLHUB_DELETED_USER_VOLUMES": ("deleted_user_volumes", _deleted_user_volumes),
    "MLHUB_PIDS_LIMIT": ("pids_limit", _int_range(0)),
    "MLHUB_WORKSPACE_DISK_LIMIT": ("workspace_disk_limit", _size_or_off),
    "MLHUB_NO_NEW_PRIVILEGES": ("no_new_privileges", parse_bool),
    "MLHUB_LOGIN_MAX_FAILURES": ("login_max_failures", _int_range(0, 1000)),
    "MLHUB_LOGIN_LOCKOUT_SECONDS": ("login_lockout_seconds", _int_range(1, 86400)),
    "MLHUB_LOGIN_RATE_LIMIT": ("login_rate_limit", _int_range(0, 100000)),
    **SHARED_PORT_VARIABLES,
}


def read_settings(environ: Mapping[str, str], default_data_dir: str) -> HubSettings:
    """Read every MLHub variable from *environ*; unset or empty means the default."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, (attr, parse) in VARIABLES.items():
        raw = environ.get(name)
        if raw is None or (raw.strip() == "" and name != "MLHUB_ADMIN_PASSWORD"):
            continue
        try:
            values[attr] = parse(raw)
        except ValueError as exc:
            errors[name] = f"{exc} (got {raw[:60]!r})"
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


# --- Who logs in: the authenticator and its identity provider ------------------------------
# One block (docs/decisions/authenticators.md): MLHUB_AUTHENTICATOR picks NativeAuthenticator
# (sign-up, admin authorizes) or an identity provider (GitHub, GitLab, OpenID Connect, LDAP);
# mlhub/hub/identity.py turns these settings into the authenticator's traitlets config.

#: MLHUB_AUTHENTICATOR's values; the first is the default.
AUTHENTICATORS = ("native", "github", "gitlab", "oidc", "ldap")
OAUTH_AUTHENTICATORS = ("github", "gitlab", "oidc")
#: MLHUB_LDAP_TLS's values -> LDAPAuthenticator.tls_strategy (its own names are accepted too).
LDAP_TLS_MODES = {"starttls": "before_bind", "ldaps": "on_connect", "off": "insecure"}


@dataclass(frozen=True)
class IdentitySettings:
    authenticator: str = "native"
    admin_users: tuple[str, ...] = ()
    allow_all: bool = False
    # OAuth 2 / OpenID Connect (github, gitlab, oidc)
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_callback_url: str = ""  # empty: <public URL>/hub/oauth_callback
    oauth_allowed_groups: tuple[str, ...] = ()
    oauth_admin_groups: tuple[str, ...] = ()
    github_url: str = ""  # empty: https://github.com
    gitlab_url: str = ""  # empty: https://gitlab.com
    oidc_issuer: str = ""
    oidc_authorize_url: str = ""
    oidc_token_url: str = ""
    oidc_userdata_url: str = ""
    oidc_scopes: tuple[str, ...] = ("openid", "profile", "email")
    oidc_username_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    # LDAP
    ldap_server: str = ""
    ldap_port: int = 0  # 0: 636 with ldaps, else 389
    ldap_tls: str = "before_bind"
    ldap_ca_file: str = ""
    ldap_bind_dn_templates: tuple[str, ...] = ()
    ldap_user_search_base: str = ""
    ldap_user_attribute: str = "uid"
    ldap_search_user: str = ""
    ldap_search_password: str = ""
    ldap_allowed_groups: tuple[str, ...] = ()
    ldap_admin_groups: tuple[str, ...] = ()

    @property
    def native(self) -> bool:
        return self.authenticator == "native"


def _authenticator(text: str) -> str:
    value = text.strip().lower()
    if value not in AUTHENTICATORS:
        raise ValueError(f"must be one of {', '.join(AUTHENTICATORS)}")
    return value


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("must be a comma-separated list of names")
    return names


def _dns(text: str) -> tuple[str, ...]:
    """LDAP DNs hold commas, so a list of them is separated by ';'."""
    dns = tuple(part.strip() for part in text.split(";") if part.strip())
    if not dns or not all("=" in dn for dn in dns):
        raise ValueError(
            "must be one or more LDAP DNs separated by ';', e.g. cn=hub-users,ou=groups,dc=example,dc=org"
        )
    return dns


def _dn(text: str) -> str:
    dns = _dns(text)
    if len(dns) != 1:
        raise ValueError("must be one LDAP DN, e.g. ou=people,dc=example,dc=org")
    return dns[0]


def _bind_dn_templates(text: str) -> tuple[str, ...]:
    templates = _dns(text)
    if not all("{username}" in t for t in templates):
        raise ValueError(
            "each DN template must contain {username}, e.g. uid={username},ou=people,dc=example,dc=org"
        )
    return templates


def _ldap_tls(text: str) -> str:
    value = text.strip().lower()
    if value in LDAP_TLS_MODES:
        return LDAP_TLS_MODES[value]
    if value in LDAP_TLS_MODES.values():
        return value
    raise ValueError("must be starttls (default), ldaps or off")


def _scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(text.replace(",", " ").split())
    if not scopes:
        raise ValueError("must be scopes separated by spaces, e.g. openid profile email groups")
    return scopes


def _claim(text: str) -> str:
    text = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_:.\-/]+", text):
        raise ValueError("must be a claim name (letters, digits, _ : . - /; '.' for nested claims)")
    return text


def _ldap_host(text: str) -> str:
    text = text.strip()
    if "://" in text:
        raise ValueError(
            "must be the LDAP server's host name or IP address (no ldap://; port: MLHUB_LDAP_PORT)"
        )
    return _host(text)


# variable -> (IdentitySettings field, parser, the authenticators it applies to)
IDENTITY_VARIABLES: dict[str, tuple[str, Callable[[str], Any], tuple[str, ...]]] = {
    "MLHUB_AUTHENTICATOR": ("authenticator", _authenticator, AUTHENTICATORS),
    "MLHUB_ADMIN_USERS": ("admin_users", _names, AUTHENTICATORS[1:]),
    "MLHUB_AUTH_ALLOW_ALL": ("allow_all", parse_bool, AUTHENTICATORS[1:]),
    "MLHUB_OAUTH_CLIENT_ID": ("oauth_client_id", _nonempty, OAUTH_AUTHENTICATORS),
    "MLHUB_OAUTH_CLIENT_SECRET": ("oauth_client_secret", _nonempty, OAUTH_AUTHENTICATORS),
    "MLHUB_OAUTH_CALLBACK_URL": ("oauth_callback_url", _http_url, OAUTH_AUTHENTICATORS),
    "MLHUB_OAUTH_ALLOWED_GROUPS": ("oauth_allowed_groups", _names, OAUTH_AUTHENTICATORS),
    "MLHUB_OAUTH_ADMIN_GROUPS": ("oauth_admin_groups", _names, ("github", "oidc")),
    "MLHUB_GITHUB_URL": ("github_url", _http_url, ("github",)),
    "MLHUB_GITLAB_URL": ("gitlab_url", _http_url, ("gitlab",)),
    "MLHUB_OIDC_ISSUER": ("oidc_issuer", _http_url, ("oidc",)),
    "MLHUB_OIDC_AUTHORIZE_URL": ("oidc_authorize_url", _http_url, ("oidc",)),
    "MLHUB_OIDC_TOKEN_URL": ("oidc_token_url", _http_url, ("oidc",)),
    "MLHUB_OIDC_USERDATA_URL": ("oidc_userdata_url", _http_url, ("oidc",)),
    "MLHUB_OIDC_SCOPES": ("oidc_scopes", _scopes, ("oidc",)),
    "MLHUB_OIDC_USERNAME_CLAIM": ("oidc_username_claim", _claim, ("oidc",)),
    "MLHUB_OIDC_GROUPS_CLAIM": ("oidc_groups_claim", _claim, ("oidc",)),
    "MLHUB_LDAP_SERVER": ("ldap_server", _ldap_host, ("ldap",)),
    "MLHUB_LDAP_PORT": ("ldap_port", _int_range(1, 65535), ("ldap",)),
    "MLHUB_LDAP_TLS": ("ldap_tls", _ldap_tls, ("ldap",)),
    "MLHUB_LDAP_CA_FILE": ("ldap_ca_file", _existing_file, ("ldap",)),
    "MLHUB_LDAP_BIND_DN_TEMPLATE": ("ldap_bind_dn_templates", _bind_dn_templates, ("ldap",)),
    "MLHUB_LDAP_USER_SEARCH_BASE": ("ldap_user_search_base", _dn, ("ldap",)),
    "MLHUB_LDAP_USER_ATTRIBUTE": ("ldap_user_attribute", _claim, ("ldap",)),
    "MLHUB_LDAP_SEARCH_USER": ("ldap_search_user", _nonempty, ("ldap",)),
    "MLHUB_LDAP_SEARCH_PASSWORD": ("ldap_search_password", _nonempty, ("ldap",)),
    "MLHUB_LDAP_ALLOWED_GROUPS": ("ldap_allowed_groups", _dns, ("ldap",)),
    "MLHUB_LDAP_ADMIN_GROUPS": ("ldap_admin_groups", _dns, ("ldap",)),
}


def read_identity_settings(environ: Mapping[str, str], errors: dict[str, str]) -> IdentitySettings:
    """The authenticator and its identity provider's settings; problems go into *errors*
    (variable -> what it allows), as read_settings does for the others."""
    values: dict[str, Any] = {}
    given: list[str] = []
    for name, (attr, parse, _) in IDENTITY_VARIABLES.items():
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        given.append(name)
        try:
            values[attr] = parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if "SECRET" in name or "PASSWORD" in name else repr(raw[:60])
            errors[name] = f"{exc} (got {shown})"
    identity = IdentitySettings(**values)
    kind = identity.authenticator
    for name in given:
        applies_to = IDENTITY_VARIABLES[name][2]
        if kind not in applies_to and name not in errors:
            errors[name] = f"is only used with MLHUB_AUTHENTICATOR={' or '.join(applies_to)} (it is {kind})"
    if kind == "native" or "MLHUB_AUTHENTICATOR" in errors:
        return identity
    missing = []
    if kind in OAUTH_AUTHENTICATORS:
        missing += [
            n
            for n, v in (
                ("MLHUB_OAUTH_CLIENT_ID", identity.oauth_client_id),
                ("MLHUB_OAUTH_CLIENT_SECRET", identity.oauth_client_secret),
            )
            if not v
        ]
    if kind == "oidc" and "MLHUB_OIDC_ISSUER" not in errors:
        endpoints = (identity.oidc_authorize_url, identity.oidc_token_url, identity.oidc_userdata_url)
        if identity.oidc_issuer and any(endpoints):
            errors["MLHUB_OIDC_ISSUER"] = (
                "set either the issuer (its endpoints are discovered) or MLHUB_OIDC_AUTHORIZE_URL, "
                "MLHUB_OIDC_TOKEN_URL and MLHUB_OIDC_USERDATA_URL, not both"
            )
        elif not identity.oidc_issuer and not all(endpoints):
            errors["MLHUB_OIDC_ISSUER"] = (
                "needed with MLHUB_AUTHENTICATOR=oidc (e.g. https://login.example.org/realms/lab), "
                "unless MLHUB_OIDC_AUTHORIZE_URL, MLHUB_OIDC_TOKEN_URL and MLHUB_OIDC_USERDATA_URL are all set"
            )
    if kind == "ldap":
        if not identity.ldap_server:
            missing.append("MLHUB_LDAP_SERVER")
        if bool(identity.ldap_bind_dn_templates) == bool(identity.ldap_user_search_base):
            errors["MLHUB_LDAP_BIND_DN_TEMPLATE"] = (
                "set either this (users bind as uid={username},ou=people,...) or MLHUB_LDAP_USER_SEARCH_BASE "
                "(the user's DN is looked up by MLHUB_LDAP_USER_ATTRIBUTE), exactly one of them"
            )
        if bool(identity.ldap_search_user) != bool(identity.ldap_search_password):
            errors["MLHUB_LDAP_SEARCH_USER"] = "needs MLHUB_LDAP_SEARCH_PASSWORD, and the other way round"
    for name in missing:
        errors.setdefault(name, f"needed with MLHUB_AUTHENTICATOR={kind}")
    allowed = identity.ldap_allowed_groups if kind == "ldap" else identity.oauth_allowed_groups
    admins = identity.ldap_admin_groups if kind == "ldap" else identity.oauth_admin_groups
    if not (identity.allow_all or allowed or admins or identity.admin_users):
        prefix = "MLHUB_LDAP" if kind == "ldap" else "MLHUB_OAUTH"
        errors.setdefault(
            "MLHUB_AUTH_ALLOW_ALL",
            f"nobody could log in: set {prefix}_ALLOWED_GROUPS (who may log in), or MLHUB_AUTH_ALLOW_ALL=true "
            f"(every account of the identity provider), or {prefix}_ADMIN_GROUPS / MLHUB_ADMIN_USERS",
        )
    return identity
