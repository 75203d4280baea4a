"""A backend that speaks both WebSocket and plain HTTP on one port, like a SignalR app,
and a plain HTTP client, for the nginx export's lab test.

    ws_http_peer.py serve --port 8765      # in the container's network namespace
    ws_http_peer.py get --url http://198.51.100.2:80/ --src 192.0.2.100

The server echoes WebSocket messages and answers a plain request with 200 `plain ok`.
Like a real app it treats `Connection: upgrade` as a WebSocket handshake, so a proxy that
hard-codes that header on every request breaks plain HTTP (the server refuses the
handshake with 400). `get` prints the status code and the body on one line.
"""

from __future__ import annotations

import argparse
import http.client
import socket
from urllib.parse import urlsplit

from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve


def echo(connection: ServerConnection) -> None:
    for message in connection:
        connection.send(message)


def plain_or_handshake(connection: ServerConnection, request: Request) -> Response | None:
    tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    if "upgrade" in tokens:
        return None
    return connection.respond(200, "plain ok\n")


def run_server(port: int) -> None:
    sock = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
    with serve(echo, sock=sock, ping_interval=None, process_request=plain_or_handshake) as srv:
        print(f"serving on {port}", flush=True)
        srv.serve_forever()


def run_get(url: str, src: str | None) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "", parts.port or 80, timeout=10, source_address=(src, 0) if src else None
    )
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        body = response.read().decode(errors="replace").strip()
        print(f"{response.status} {body}", flush=True)
    except OSError as exc:
        print(f"fail {exc!r}", flush=True)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="ws_http_peer")
    sub = parser.add_subparsers(dest="mode", required=True)
    server = sub.add_parser("serve")
    server.add_argument("--port", type=int, required=True)
    get = sub.add_parser("get")
    get.add_argument("--url", required=True)
    get.add_argument("--src")
    args = parser.parse_args()
    if args.mode == "serve":
        run_server(args.port)
    else:
        run_get(args.url, args.src)


if __name__ == "__main__":
    main()
