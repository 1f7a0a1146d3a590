# The stock stack MLHub is measured against: JupyterHub + DockerSpawner + configurable-http-proxy,
# the same versions and the same workspace image, configured the way their docs suggest for
# one Docker host. The benchmark passes ports and its admin token the same way as for MLHub.
import ipaddress
import os

import docker

c = get_config()  # noqa: F821

bridge = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]
gateway = bridge.get("Gateway") or str(next(ipaddress.ip_network(bridge["Subnet"]).hosts()))

c.JupyterHub.ip = os.environ.get("MLHUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ["MLHUB_PORT"])
c.JupyterHub.hub_ip = gateway
data = os.environ["MLHUB_DATA_DIR"]
os.makedirs(data, exist_ok=True)
c.JupyterHub.db_url = f"sqlite:///{data}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{data}/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.pid_file = f"{data}/proxy.pid"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = "mlhub/workspace:latest"
c.DockerSpawner.remove = True
c.DockerSpawner.prefix = os.environ["HUB_NAME"]
c.DockerSpawner.extra_create_kwargs = {"labels": {"mlhub.origin": os.environ["HUB_NAME"]}}
c.Spawner.start_timeout = 300
# The benchmark passes BENCH_STOCK_NETWORK: servers on one user-defined bridge, reached by
# container IP (as MLHub reaches its servers), not through Docker's port forwarding.
if os.environ.get("BENCH_STOCK_NETWORK"):
    c.DockerSpawner.network_name = os.environ["BENCH_STOCK_NETWORK"]
    c.DockerSpawner.use_internal_ip = True
load_subconfig(os.environ["MLHUB_USER_CONFIG"])  # noqa: F821
