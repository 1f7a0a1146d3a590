"""Run the SSH gateway (started by the hub as the managed JupyterHub service ``ssh``).

Environment: JupyterHub's (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_URL,
JUPYTERHUB_SERVICE_PREFIX) and the settings table's variables whose receivers include ``ssh``
(mlhub/core/settings.py; the README lists them): HUB_NAME, MLHUB_DATA_DIR (host key and key
database), MLHUB_IP, MLHUB_SSH_PORT, MLHUB_SSH_PUBLIC_HOST, MLHUB_SSH_TOKEN_AUTH,
MLHUB_SSH_KEYS_DB_URL, MLHUB_PUBLIC_URL, EXECUTION_MODE, MLHUB_NAMESPACE and
MLHUB_CULL_IDLE_SECONDS (open sessions' activity is reported as often as workspaces report
theirs); the variables of the hub's one port (MLHUB_PORT, SSL_ENABLED, START_CHP, START_SSH,
MLHUB_PROXY_API_URL, MLHUB_SSH_SHARED_PORT, MLHUB_PROXY_INTERNAL_PORT) give the port shown to
users. It exits when its hub is gone (mlhub/core/lifetime.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import asyncssh

from mlhub.engines.base import Engine
from mlhub.services.base import listen, read_or_exit, setup_logging, watch_hub
from mlhub.services.ssh.config import GatewayConfig, read_config
from mlhub.services.ssh.hub import GatewayHub
from mlhub.services.ssh.keystore import KeyStore
from mlhub.services.ssh.server import Gateway
from mlhub.services.ssh.web import Context, make_app

log = logging.getLogger("mlhub.services.ssh")


def host_key(config: GatewayConfig) -> asyncssh.SSHKey:
    """The gateway's host key, made once and kept in the data dir (so clients trust it later)."""
    path = config.host_key_path
    if not os.path.exists(path):
        key = asyncssh.generate_private_key("ssh-ed25519")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.export_private_key())
        log.info("Generated the SSH host key %s (%s)", path, key.get_fingerprint())
    return asyncssh.read_private_key(path)


async def make_engine(config: GatewayConfig) -> Engine:
    """The engine adapter (mlhub/engines) for the hub's execution mode."""
    if config.mode == "k8s":
        from mlhub.engines.kube import KubeEngine, load_config

        await load_config()
        return KubeEngine(config.namespace)
    from mlhub.engines.docker import DockerEngine

    engine = DockerEngine()
    engine.check_exec()
    return engine


async def main() -> None:
    setup_logging("ssh-gateway")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    config: GatewayConfig = read_or_exit(lambda: read_config(os.environ), "ssh gateway")
    keys = KeyStore(config.keys_db_url)
    hub = GatewayHub(config.api_url, config.api_token)
    try:
        engine = await make_engine(config)
    except Exception as exc:
        sys.exit(
            f"ssh gateway cannot reach the {'Kubernetes API' if config.mode == 'k8s' else 'Docker engine'}: {exc}"
        )
    gateway = Gateway(
        hub,
        keys,
        engine,
        config.hub_name,
        config.token_auth,
        keys_page_url=f"the hub's {config.prefix} page",
        activity_interval=config.activity_interval,
    )
    key = host_key(config)
    server = await asyncssh.listen(
        config.ssh_ip or None,
        config.ssh_port,
        server_factory=gateway.server_factory,
        server_host_keys=[key],
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        keepalive_interval=60,
        login_timeout=60,
    )
    app = make_app(
        Context(
            keys,
            hub,
            config.prefix,
            config.public_port or config.ssh_port,
            config.public_host,
            config.public_url,
            tunnel_upstream=(
                config.ssh_ip if config.ssh_ip not in ("", "0.0.0.0", "::") else "127.0.0.1",
                config.ssh_port,
            ),
            service_name=config.service_name,
        )
    )
    listen(app, config.service_url)
    log.info(
        "SSH gateway for hub %s on port %d (host key %s; token logins %s); keys page on %s",
        config.hub_name,
        config.ssh_port,
        key.get_fingerprint(),
        "on" if config.token_auth else "off",
        config.service_url,
    )
    async with server:
        await watch_hub("ssh gateway")


if __name__ == "__main__":
    asyncio.run(main())
