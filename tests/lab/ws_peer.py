"""A real WebSocket echo server and a line-driven client, for the agent's lab tests.

The lab image has only busybox, so both run from the host's Python (this venv, with the
websockets package) inside a network namespace via nsenter:

    ws_peer.py serve --port 8765        # in the container's /proc/PID/ns/net
    ws_peer.py client --url ws://198.51.100.2:9765/ --src 198.51.100.7   # lab internet

The client opens ONE connection, prints `connected`, then for every line on stdin sends
it as a message and prints `ok` when the same text came back (`fail ...` otherwise). A
test feeding it lines across re-applies proves the very same connection kept working.
"""

from __future__ import annotations

import argparse
import socket
import sys
from urllib.parse import urlsplit

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

REPLY_TIMEOUT = 5.0


def echo(connection: ServerConnection) -> None:
    for message in connection:
        connection.send(message)


def run_server(port: int) -> None:
    """Dual-stack on every address of the namespace it runs in."""
    sock = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
    with serve(echo, sock=sock, ping_interval=None) as server:
        print(f"serving on {port}", flush=True)
        server.serve_forever()


def run_client(url: str, src: str | None) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    try:
        sock = socket.create_connection(
            (host, port), timeout=REPLY_TIMEOUT, source_address=(src, 0) if src else None
        )
        connection = connect(url, sock=sock, open_timeout=REPLY_TIMEOUT, ping_interval=None)
    except (OSError, WebSocketException, TimeoutError) as exc:
        print(f"fail connect {exc!r}", flush=True)
        return
    local = connection.local_address
    print(f"connected {local[0]} {local[1]}", flush=True)
    with connection:
        for line in sys.stdin:
            text = line.strip()
            try:
                connection.send(text)
                reply = connection.recv(timeout=REPLY_TIMEOUT)
            except (OSError, WebSocketException, TimeoutError) as exc:
                print(f"fail {exc!r}", flush=True)
                continue
            print("ok" if reply == text else f"fail got {reply!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="ws_peer")
    sub = parser.add_subparsers(dest="mode", required=True)
    server = sub.add_parser("serve")
    server.add_argument("--port", type=int, required=True)
    client = sub.add_parser("client")
    client.add_argument("--url", required=True)
    client.add_argument("--src")
    args = parser.parse_args()
    if args.mode == "serve":
        run_server(args.port)
    else:
        run_client(args.url, args.src)


if __name__ == "__main__":
    main()
