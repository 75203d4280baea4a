"""A tiny TCP and UDP responder that lab namespaces and containers run.

A probe counts a port as open when TCP connects or a UDP datagram is answered. TCP
connections get a banner and are then echoed until the peer closes, so a test can hold
a connection open across re-applies and see whether it still carries data. It runs
from the host's Python inside the target network namespace (nsenter), which is why the
lab image needs nothing but busybox.
"""

from __future__ import annotations

import argparse
import selectors
import socket
from collections.abc import Sequence

BANNER = b"dockwall-lab\n"


def bound_socket(kind: int, address: str, port: int) -> socket.socket:
    """A listening (TCP) or bound (UDP) socket; IPv6 sockets are v6-only to avoid clashes."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(128)
    sock.setblocking(False)
    return sock


class Responder:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()

    def bind(self, kind: int, address: str, port: int) -> None:
        self.selector.register(bound_socket(kind, address, port), selectors.EVENT_READ, "server")

    def serve(self) -> None:
        """Answers forever; the lab stops it with a signal."""
        while True:
            for key, _ in self.selector.select():
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    self.handle(sock, key.data)
                except OSError:
                    self.drop(sock, key.data)

    def handle(self, sock: socket.socket, role: str) -> None:
        if role == "conn":
            data = sock.recv(4096)
            if not data:
                self.drop(sock, role)
                return
            sock.sendall(data)
        elif sock.type == socket.SOCK_STREAM:
            conn, _ = sock.accept()
            conn.setblocking(True)
            conn.settimeout(1.0)
            conn.sendall(BANNER)
            self.selector.register(conn, selectors.EVENT_READ, "conn")
        else:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)

    def drop(self, sock: socket.socket, role: str) -> None:
        if role == "conn":
            self.selector.unregister(sock)
            sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dockwall-lab-listener")
    parser.add_argument("--lab", help="the lab this listener belongs to, so teardown finds it")
    parser.add_argument("--addr", action="append", default=[])
    parser.add_argument("--tcp", type=int, action="append", default=[])
    parser.add_argument("--udp", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    responder = Responder()
    for address in args.addr or ["0.0.0.0", "::"]:
        for port in args.tcp:
            responder.bind(socket.SOCK_STREAM, address, port)
        for port in args.udp:
            responder.bind(socket.SOCK_DGRAM, address, port)
    responder.serve()


if __name__ == "__main__":
    main()
