"""Entrypoint of the ``mlhub/mlhub`` image (console script ``mlhub-container``).

Validates the environment (every variable in the README, errors name the variable), renames
the container to ``HUB_NAME`` so workspaces reach it by that name, prepares ``/data``
(database, cookie secret, certificates, initial admin password), then runs the roles asked
for: ``START_JHUB`` (JupyterHub, which also starts the proxy unless ``START_CHP``),
``START_CHP`` (configurable-http-proxy on its own, as ML Hub's Kubernetes setup used it).
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from mlhub.core.parsing import parse_bool
from mlhub.core.settings import HubSettings, SettingsError, read_settings

RESOURCES = Path(os.environ.get("MLHUB_RESOURCES_DIR", "/resources"))
USER_CONFIG = RESOURCES / "jupyterhub_user_config.py"
MOUNTED_CERT = RESOURCES / "ssl" / "cert.crt"
MOUNTED_KEY = RESOURCES / "ssl" / "cert.key"


def say(message: str) -> None:
    print(f"[mlhub] {message}", flush=True)


def fail(message: str) -> None:
    print(f"[mlhub] cannot start: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def rename_own_container(hub_name: str) -> None:
    """Rename this container to HUB_NAME (ML Hub did the same), unless not in Docker mode."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        me = client.containers.get(socket.gethostname())
    except Exception as exc:
        fail(
            f"the Docker engine is not reachable, or this container is not on it ({exc}); "
            "mount the engine's socket: -v /var/run/docker.sock:/var/run/docker.sock"
        )
        return
    if me.name == hub_name:
        return
    try:
        other = client.containers.get(hub_name)
    except docker.errors.NotFound:
        other = None
    if other is not None and other.id != me.id:
        fail(
            f"HUB_NAME: a container named {hub_name!r} already exists on this engine "
            "(another hub?); choose another HUB_NAME or remove that container"
        )
    me.rename(hub_name)
    say(f"renamed this container from {me.name} to {hub_name}")


def resolve_own_name(hub_name: str, hosts: Path = Path("/etc/hosts")) -> None:
    """Workspaces reach the hub by container name through Docker's DNS on their networks; the
    proxy in this container must resolve the same name, and the default bridge has no DNS."""
    lines = hosts.read_text().splitlines() if hosts.is_file() else []
    if any(hub_name in line.split()[1:] for line in lines if line.strip() and not line.startswith("#")):
        return
    with hosts.open("a") as f:
        f.write(f"127.0.0.1\t{hub_name}\n")


def certificate_names(public_host: str) -> list[str]:
    """Names a generated certificate covers: the public host and, for per-user origins, every
    user's subdomain of it (``*.<host>``)."""
    return [public_host, f"*.{public_host}"]


def ensure_certificate(data_dir: Path, public_host: str) -> tuple[str, str]:
    """A mounted certificate, or a self-signed one kept in /data/ssl, generated on first start
    and again when the public host changes (it covers ``<host>`` and ``*.<host>``)."""
    if MOUNTED_CERT.is_file() and MOUNTED_KEY.is_file():
        say(f"SSL: using the certificate mounted at {MOUNTED_CERT.parent}")
        return str(MOUNTED_CERT), str(MOUNTED_KEY)
    ssl_dir = data_dir / "ssl"
    cert, key, names_file = ssl_dir / "cert.crt", ssl_dir / "cert.key", ssl_dir / "cert.names"
    names = certificate_names(public_host)
    current = names_file.read_text().split() if names_file.is_file() else []
    if not (cert.is_file() and key.is_file()) or current != names:
        ssl_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                f"/CN={public_host}/O=MLHub self-signed",
                "-addext",
                "subjectAltName=" + ",".join(f"DNS:{name}" for name in names),
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        key.chmod(0o600)
        names_file.write_text(" ".join(names) + "\n")
        say(
            f"SSL: generated a self-signed certificate for {', '.join(names)} in {ssl_dir} "
            "(browsers will ask to trust it)"
        )
    return str(cert), str(key)


def initial_admin_password(settings: HubSettings, data_dir: Path) -> str:
    """MLHUB_ADMIN_PASSWORD, or one generated once into /data (its path is logged, never the value)."""
    if settings.admin_password:
        return settings.admin_password
    path = data_dir / "initial-admin-password"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    say(
        f"log in as {settings.admin_user!r} with the password in {path} "
        f"(docker exec <container> cat {path}); set on first start only"
    )
    return path.read_text().strip()


def main() -> None:
    env = dict(os.environ)
    env.setdefault("MLHUB_DATA_DIR", "/data")
    if USER_CONFIG.is_file():
        env.setdefault("MLHUB_USER_CONFIG", str(USER_CONFIG))
    ssl = ssl_wanted(env)
    try:
        # the certificate is found or made below, once the data dir is known
        settings = read_settings({**env, "SSL_ENABLED": "false"}, default_data_dir=env["MLHUB_DATA_DIR"])
    except SettingsError as exc:
        fail(f"invalid environment variables:\n{exc}")
        return
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    if settings.execution_mode == "docker" and settings.start_jhub:
        rename_own_container(settings.hub_name)
        resolve_own_name(settings.hub_name)
    if ssl:
        env["SSL_ENABLED"] = "true"
        # the public URL's host is the same with or without SSL (read above without it)
        env["MLHUB_SSL_CERT"], env["MLHUB_SSL_KEY"] = ensure_certificate(data_dir, settings.public_host)
    if settings.start_jhub and settings.identity.native:
        # with an identity provider there is no password account to set up
        env["MLHUB_ADMIN_PASSWORD"] = initial_admin_password(settings, data_dir)

    children: list[subprocess.Popen[bytes]] = []
    if settings.start_chp:
        token_file = data_dir / "proxy-auth-token"
        if not token_file.is_file():
            token_file.write_text(secrets.token_hex(32))
            token_file.chmod(0o600)
        env.setdefault("CONFIGPROXY_AUTH_TOKEN", token_file.read_text().strip())
        chp = shutil.which("configurable-http-proxy") or "configurable-http-proxy"
        args = [
            chp,
            "--ip",
            settings.ip,
            "--port",
            str(settings.port),
            "--api-ip",
            settings.proxy_api_ip,
            "--api-port",
            "8001",
            "--default-target",
            settings.hub_url,
            "--error-target",
            settings.hub_url + "/hub/error",
        ]
        if settings.user_subdomains:
            args.append("--host-routing")  # what JupyterHub passes when it starts the proxy itself
        if env.get("SSL_ENABLED") == "true":
            args += ["--ssl-key", env["MLHUB_SSL_KEY"], "--ssl-cert", env["MLHUB_SSL_CERT"]]
        args += shlex.split(env.get("ADDITIONAL_ARGS", ""))
        say("starting configurable-http-proxy")
        children.append(subprocess.Popen(args, env=env))
    if settings.start_jhub:
        config = env.get("MLHUB_CONFIG", str(RESOURCES / "jupyterhub_config.py"))
        say(f"starting JupyterHub (hub {settings.hub_name}, {settings.execution_mode} mode)")
        os.chdir(data_dir)
        children.append(subprocess.Popen(["jupyterhub", "-f", config], env=env))

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # run until any role exits; then stop the others and exit with its code
    while True:
        pid, status = os.wait()
        for child in children:
            if child.pid == pid:
                forward(signal.SIGTERM, None)
                for other in children:
                    if other is not child:
                        try:
                            other.wait(timeout=20)
                        except subprocess.TimeoutExpired:
                            other.kill()
                sys.exit(os.waitstatus_to_exitcode(status))


def ssl_wanted(env: dict[str, str]) -> bool:
    try:
        return parse_bool(env.get("SSL_ENABLED", "false") or "false")
    except ValueError:
        fail(
            f"invalid environment variables:\n  SSL_ENABLED: must be true or false (got {env.get('SSL_ENABLED')!r})"
        )
        return False


if __name__ == "__main__":
    main()
