"""``mlhub-ssh-tunnel``: ssh's ProxyCommand for reaching the gateway through the hub's HTTP(S).

    export MLHUB_API_TOKEN=<a hub API token of yours>      # or --token-file
    ssh -o ProxyCommand='mlhub-ssh-tunnel https://hub.example.org' alice,gpu@mlhub

Opens a WebSocket to ``<hub>/services/ssh/tunnel`` with the token in the Authorization header
and copies stdin to it and it to stdout. Needs only tornado (which JupyterHub brings).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from urllib.parse import urlparse, urlunparse

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

CHUNK = 65536
TOKEN_VARIABLES = ("MLHUB_API_TOKEN", "JUPYTERHUB_API_TOKEN")


class TunnelError(Exception):
    pass


def tunnel_url(url: str) -> str:
    """``ws(s)://...`` of the tunnel: a hub URL (``https://hub``) gets the default service path."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.hostname:
        raise TunnelError(f"url: must be the hub's http(s):// URL (got {url!r})")
    scheme = {"http": "ws", "https": "wss"}.get(parsed.scheme, parsed.scheme)
    path = parsed.path if parsed.path.strip("/") else "/services/ssh/tunnel"
    return urlunparse(parsed._replace(scheme=scheme, path=path))


def read_token(token_file: str | None) -> str:
    if token_file:
        try:
            with open(os.path.expanduser(token_file)) as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise TunnelError(f"--token-file: cannot read it ({exc})") from None
        if not token:
            raise TunnelError(f"--token-file: {token_file} is empty")
        return token
    for name in TOKEN_VARIABLES:
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()
    raise TunnelError(
        "no hub API token: set MLHUB_API_TOKEN (make one on the hub's Token page) or use --token-file"
    )


def _stdin_reader(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]) -> None:
    while True:
        try:
            data = os.read(0, CHUNK)
        except OSError:
            data = b""
        asyncio.run_coroutine_threadsafe(queue.put(data), loop).result()
        if not data:
            return


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


async def run(url: str, token: str, ca_cert: str | None = None, insecure: bool = False) -> int:
    request = HTTPRequest(
        url,
        headers={"Authorization": f"token {token}"},
        validate_cert=not insecure,
        ca_certs=ca_cert,
        connect_timeout=30,
        request_timeout=30,
    )
    try:
        conn = await websocket_connect(request, max_message_size=1024 * 1024)
    except HTTPClientError as exc:
        body = exc.response.body.decode(errors="replace")[:300] if exc.response and exc.response.body else ""
        raise TunnelError(f"the hub refused the tunnel ({exc.code}): {body or exc.message}") from None
    except OSError as exc:
        raise TunnelError(f"cannot reach {url}: {exc}") from None
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)
    threading.Thread(target=_stdin_reader, args=(loop, queue), daemon=True).start()

    async def upstream() -> None:
        while data := await queue.get():
            await conn.write_message(data, binary=True)
        conn.close()

    async def downstream() -> None:
        while (message := await conn.read_message()) is not None:
            data = message.encode() if isinstance(message, str) else message
            await loop.run_in_executor(None, _write_all, data)

    up = asyncio.ensure_future(upstream())
    try:
        await downstream()
    finally:
        up.cancel()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mlhub-ssh-tunnel",
        description="ssh ProxyCommand: reach an MLHub SSH gateway through the hub's HTTP(S) address. "
        "Example: ssh -o ProxyCommand='mlhub-ssh-tunnel https://hub.example.org' alice@mlhub",
    )
    parser.add_argument("url", help="the hub's URL (https://hub.example.org) or the tunnel's full URL")
    parser.add_argument(
        "--token-file", help="file holding a hub API token of yours (default: $MLHUB_API_TOKEN)"
    )
    parser.add_argument("--ca-cert", help="CA certificate(s) to trust for the hub (e.g. a self-signed one)")
    parser.add_argument("--insecure", action="store_true", help="do not verify the hub's certificate")
    args = parser.parse_args(argv)
    try:
        url = tunnel_url(args.url)
        token = read_token(args.token_file)
        code = asyncio.run(run(url, token, args.ca_cert, args.insecure))
    except TunnelError as exc:
        print(f"mlhub-ssh-tunnel: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    os._exit(code)  # the stdin thread may still be blocked in read()


if __name__ == "__main__":
    main()
