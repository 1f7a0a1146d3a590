"""The port mux on its own (``python -m mlhub.hub.port_mux``): real process, real sockets, two
small upstreams that say who they are. The hub with it in front: tests/test_ssh_shared_port.py."""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from devtools.hubprocess import free_port
from mlhub.core.lifetime import alive


class Tagged(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def upstream(tag: bytes) -> tuple[Tagged, list[str]]:
    """A server that says *tag*, then echoes; it records the address each connection came from."""
    peers: list[str] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            peers.append(self.client_address[0])
            self.request.sendall(tag)
            while data := self.request.recv(1024):
                self.request.sendall(data)

    server = Tagged(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, peers


@pytest.fixture
def mux(tmp_path) -> Iterator[dict]:
    proxy, proxy_peers = upstream(b"PROXY:")
    ssh, ssh_peers = upstream(b"GATEWAY:")
    port = free_port()
    log = tmp_path / "mux.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlhub.hub.port_mux"],
        env={
            **os.environ,
            "MLHUB_MUX_IP": "127.0.0.1",
            "MLHUB_MUX_PORT": str(port),
            "MLHUB_MUX_HTTPS_UPSTREAM": f"127.0.0.1:{proxy.server_address[1]}",
            "MLHUB_MUX_SSH_UPSTREAM": f"127.0.0.1:{ssh.server_address[1]}",
            "MLHUB_MUX_MAX_CONNECTIONS": "3",
        },
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_listening(port, lambda: proc.poll() is None, log.read_text)
    yield {"port": port, "log": log, "proxy_peers": proxy_peers, "ssh_peers": ssh_peers}
    proc.terminate()
    proc.wait(timeout=10)
    proxy.shutdown()
    ssh.shutdown()


def wait_listening(
    port: int, starting: Callable[[], bool], why: Callable[[], str], timeout: float = 30
) -> None:
    """Until the mux accepts connections on *port*, while *starting* holds, for *timeout* s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert starting() and time.monotonic() < deadline, why()
            time.sleep(0.2)


def exchange(port: int, first: bytes, source: str = "127.0.0.1") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0)) as sock:
        sock.sendall(first)
        reply = b""
        while not reply.endswith(first):
            chunk = sock.recv(1024)
            if not chunk:
                break
            reply += chunk
        return reply


def test_first_bytes_pick_the_upstream_and_pass_unchanged(mux):
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"  # the start of a TLS ClientHello
    assert exchange(mux["port"], hello) == b"PROXY:" + hello
    assert exchange(mux["port"], b"GET / HTTP/1.1\r\n") == b"PROXY:GET / HTTP/1.1\r\n"
    assert exchange(mux["port"], b"SSH-2.0-OpenSSH_9.2\r\n").startswith(b"GATEWAY:SSH-")
    assert exchange(mux["port"], b"SSX-1").startswith(b"PROXY:SSX-")


def test_each_client_reaches_the_upstreams_from_its_own_loopback_address(mux):
    exchange(mux["port"], b"GET /a", source="127.0.0.2")
    exchange(mux["port"], b"GET /b", source="127.0.0.2")
    exchange(mux["port"], b"GET /c", source="127.0.0.3")
    exchange(mux["port"], b"SSH-2.0-x\r\n", source="127.0.0.2")
    first, again, other = mux["proxy_peers"][-3:]
    assert first == again != other
    assert first.startswith("127.") and first != "127.0.0.2" and other != "127.0.0.3"
    assert mux["ssh_peers"][-1] == first  # the same address towards the gateway
    assert (
        f"Client 127.0.0.2 is seen by the proxy, the hub and the gateway as {first}" in mux["log"].read_text()
    )


def test_connections_beyond_the_limit_are_closed_and_logged(mux):
    held: list[socket.socket] = []
    try:
        for _ in range(3):  # one after the other, each through to the proxy
            held.append(socket.create_connection(("127.0.0.1", mux["port"]), timeout=30))
            held[-1].sendall(b"GET ")
            assert held[-1].recv(16).startswith(b"PROXY:")
        with socket.create_connection(("127.0.0.1", mux["port"]), timeout=30) as fourth:
            fourth.sendall(b"GET ")
            try:
                answer = fourth.recv(16)
            except ConnectionResetError:
                answer = b""
            assert answer == b""  # closed without an answer
        deadline = time.monotonic() + 10
        while "3 connections open" not in mux["log"].read_text():
            assert time.monotonic() < deadline, mux["log"].read_text()
            time.sleep(0.2)
    finally:
        for sock in held:
            sock.close()


def test_the_mux_ends_with_its_hub(tmp_path) -> None:
    """Started by a hub that is then killed (``kill -9``: no chance to stop it), the mux exits
    on its own, so a hub started again gets the port back (as the other services do)."""
    port = free_port()
    env = {
        **os.environ,
        "MLHUB_MUX_IP": "127.0.0.1",
        "MLHUB_MUX_PORT": str(port),
        "MLHUB_MUX_HTTPS_UPSTREAM": "127.0.0.1:9",
        "MLHUB_MUX_SSH_UPSTREAM": "127.0.0.1:9",
    }
    hub = subprocess.Popen(
        ["bash", "-c", f"MLHUB_HUB_PID=$$ {sys.executable} -m mlhub.hub.port_mux & echo $!; wait"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert hub.stdout is not None
    mux = int(hub.stdout.readline())
    try:
        wait_listening(port, lambda: alive(mux), lambda: "the mux never listened")
        hub.kill()
        hub.wait()
        deadline = time.monotonic() + 15
        while alive(mux):
            assert time.monotonic() < deadline, "the mux outlived its hub and keeps the port"
            time.sleep(0.2)
    finally:
        try:
            os.kill(mux, 9)
        except ProcessLookupError:
            pass
