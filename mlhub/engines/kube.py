"""The Kubernetes engine adapter: the client configuration (:func:`load_config`), this hub's
labelled pods, services, PVCs and network policies in its namespace listed and deleted (the
cleanup service), processes inside workspace pods through the API's exec (WebSocket) endpoint
(the SSH gateway).

Where a user name is not a valid label value, the MLHub Kube spawner keeps the exact value in
an annotation of the same key; annotations win over labels here. The exec stream speaks ``v5.channel.k8s.io`` (or ``v4`` on older API servers): each binary message
starts with its channel, 0 stdin, 1 stdout, 2 stderr, 3 the final status, 4 terminal size;
v5 adds 255 to close a channel (EOF on stdin), which v4 cannot express.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client.rest import ApiException

from mlhub.core.background import background
from mlhub.core.labels import ORIGIN
from mlhub.engines.base import (
    STDERR,
    STDOUT,
    Engine,
    ExecError,
    ProcessStream,
    Resource,
    WorkspaceInfo,
    with_pid_file,
)

log = logging.getLogger("mlhub.engines.kube")

# kind -> (API class, list method, delete method)
KINDS: dict[str, tuple[str, str, str]] = {
    "pod": ("CoreV1Api", "list_namespaced_pod", "delete_namespaced_pod"),
    "service": ("CoreV1Api", "list_namespaced_service", "delete_namespaced_service"),
    "pvc": (
        "CoreV1Api",
        "list_namespaced_persistent_volume_claim",
        "delete_namespaced_persistent_volume_claim",
    ),
    "networkpolicy": (
        "NetworkingV1Api",
        "list_namespaced_network_policy",
        "delete_namespaced_network_policy",
    ),
}


async def load_config(kubeconfig_fallback: bool = True) -> None:
    """Load the default client configuration: in-cluster (the hub pod's service account), else
    (with *kubeconfig_fallback*) the kubeconfig."""
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        if not kubeconfig_fallback:
            raise
        await kube_config.load_kube_config()


PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, ERROR, RESIZE, CLOSE = 0, 3, 4, 255


def exit_status(status: dict) -> int | None:
    """The exit code in an exec's final status message (``None`` if it carries none)."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                return None
    return None


class KubeExecStream(ProcessStream):
    def __init__(
        self, engine: KubeEngine, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse
    ):
        self.engine = engine
        self.session = session
        self.ws = ws
        self.can_close_stdin = ws.protocol == PROTOCOLS[0]
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued = 0
        self._status: dict | None = None
        self._ended = asyncio.Event()
        self._closing = False
        self._sender = asyncio.ensure_future(self._send_loop())

    async def _send_loop(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                if message is None or self.ws.closed:
                    return
                self._queued -= len(message)
                await self.ws.send_bytes(message)
            except (ConnectionError, RuntimeError):
                return
            finally:
                self._queue.task_done()

    async def read(self) -> tuple[int, bytes]:
        while True:
            message = await self.ws.receive()
            if message.type != aiohttp.WSMsgType.BINARY:
                if message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                    aiohttp.WSMsgType.CLOSING,
                ):
                    self._ended.set()
                    return 0, b""
                continue
            channel, payload = message.data[0], message.data[1:]
            if channel == ERROR:
                try:
                    self._status = json.loads(payload or b"{}")
                except ValueError:
                    self._status = {}
                continue
            if payload and channel in (STDOUT, STDERR):
                return channel, payload

    def write(self, data: bytes) -> None:
        self._queued += len(data) + 1
        self._queue.put_nowait(bytes([STDIN]) + data)

    def write_buffer_size(self) -> int:
        return self._queued

    async def drain(self) -> None:
        await self._queue.join()

    def write_eof(self) -> None:
        if self.can_close_stdin:
            self._queue.put_nowait(bytes([CLOSE, STDIN]))

    async def resize(self, width: int, height: int) -> None:
        if width and height:
            self._queue.put_nowait(bytes([RESIZE]) + json.dumps({"Width": width, "Height": height}).encode())

    async def exit_code(self, timeout: float = 10) -> int | None:
        try:
            await asyncio.wait_for(self._ended.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        self.finished = True
        return exit_status(self._status or {})

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._queue.put_nowait(None)
        background(self._close())

    async def _close(self) -> None:
        await self.ws.close()
        await self.session.close()


class KubeEngine(Engine):
    """Workspaces as pods in one namespace; uses *api_client*, else the default client
    configuration (in-cluster or kubeconfig: :func:`load_config`), loaded before this is made."""

    def __init__(
        self, namespace: str, container: str = "notebook", api_client: client.ApiClient | None = None
    ):
        self.namespace = namespace
        self.container = container
        self.api_client = api_client or client.ApiClient(client.Configuration.get_default_copy())
        self.configuration = self.api_client.configuration
        self.api = client.CoreV1Api(self.api_client)

    def _api(self, kind: str) -> Any:
        return getattr(client, KINDS[kind][0])(self.api_client)

    async def list_resources(self, hub_name: str) -> list[Resource]:
        resources = []
        for kind, (_, list_method, _) in KINDS.items():
            result = await getattr(self._api(kind), list_method)(
                self.namespace, label_selector=f"{ORIGIN}={hub_name}"
            )
            for item in result.items:
                meta = item.metadata
                labels = {**(meta.labels or {}), **(meta.annotations or {})}
                created = meta.creation_timestamp.timestamp() if meta.creation_timestamp else 0.0
                phase = getattr(getattr(item, "status", None), "phase", None) if kind == "pod" else None
                resources.append(
                    Resource(
                        kind,
                        meta.name,
                        meta.uid or meta.name,
                        labels,
                        created,
                        phase in ("Pending", "Running"),
                    )
                )
        return resources

    async def remove(self, resource: Resource) -> None:
        _, _, delete_method = KINDS[resource.kind]
        try:
            await getattr(self._api(resource.kind), delete_method)(
                resource.name, self.namespace, propagation_policy="Foreground"
            )
        except ApiException as exc:
            if exc.status == 404:
                return
            raise RuntimeError(f"{resource.kind} {resource.name}: {exc.status} {exc.reason}") from None

    async def workspace(self, ref: str) -> WorkspaceInfo | None:
        try:
            pod = await self.api.read_namespaced_pod(ref, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        metadata = {**(pod.metadata.labels or {}), **(pod.metadata.annotations or {})}
        running = pod.status.phase == "Running" and pod.metadata.deletion_timestamp is None
        return WorkspaceInfo(pod.metadata.name, metadata, running, pod.status.pod_ip if running else None)

    def _ssl(self) -> ssl.SSLContext | bool:
        c = self.configuration
        if not c.host.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=c.ssl_ca_cert)
        if c.cert_file:
            context.load_cert_chain(c.cert_file, keyfile=c.key_file)
        if not c.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def start(
        self,
        ref: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        env: Mapping[str, str] | None = None,
        hangup_file: str = "",
    ) -> KubeExecStream:
        # exec has no environment parameter: env(1) sets it
        command = list(cmd)
        if hangup_file:
            command = with_pid_file(command, hangup_file)
        if env:
            command = ["env", *[f"{k}={v}" for k, v in env.items()], *command]
        query = [("command", part) for part in command]
        query += [
            ("stdin", "true"),
            ("stdout", "true"),
            ("stderr", "true"),
            ("tty", str(tty).lower()),
            ("container", self.container),
        ]
        host = self.configuration.host.rstrip("/")
        url = host.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        url += f"/api/v1/namespaces/{self.namespace}/pods/{ref}/exec?{urlencode(query)}"
        headers = {}
        auth = (await self.configuration.auth_settings()).get("BearerToken")
        if auth:
            headers["Authorization"] = auth["value"]
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(
                url, protocols=PROTOCOLS, headers=headers, ssl=self._ssl(), max_msg_size=0, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:
            await session.close()
            raise ExecError(f"the Kubernetes API refused the exec ({exc.status} {exc.message})") from None
        except aiohttp.ClientError as exc:
            await session.close()
            raise ExecError(f"the Kubernetes API is not reachable ({exc})") from None
        stream = KubeExecStream(self, session, ws)
        stream.ref, stream.pid_file = ref, hangup_file
        return stream
