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
IP_PKTINFO = 8  # linux/in.h; the socket module names it only from Python 3.12


def bound_socket(kind: int, address: str, port: int, dual_stack: bool = False) -> socket.socket:
    """A listening (TCP) or bound (UDP) socket; IPv6 sockets are v6-only to avoid clashes,
    unless `dual_stack` asks for one that takes IPv4 too (as ::ffff:A.B.C.D)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(128)
    elif family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    sock.setblocking(False)
    return sock


class Responder:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()

    def bind(self, kind: int, address: str, port: int, dual_stack: bool = False) -> None:
        sock = bound_socket(kind, address, port, dual_stack)
        self.selector.register(sock, selectors.EVENT_READ, "server")

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
            echo_datagram(sock)

    def drop(self, sock: socket.socket, role: str) -> None:
        if role == "conn":
            self.selector.unregister(sock)
            sock.close()


def echo_datagram(sock: socket.socket) -> None:
    """Replies from the address the datagram was sent to: a wildcard socket would let the
    kernel pick another local address, and the client would not take that as the reply."""
    data, ancillary, _, peer = sock.recvmsg(2048, socket.CMSG_SPACE(64))
    replies = []
    for level, kind, payload in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            # struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}: answer from addr
            replies.append((level, kind, bytes(4) + payload[8:12] + bytes(4)))
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            # struct in6_pktinfo {in6_addr addr; int ifindex}: keep addr, let routing pick the if
            replies.append((level, kind, payload[:16] + bytes(4)))
    sock.sendmsg([data], replies, 0, peer)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dockwall-lab-listener")
    parser.add_argument("--lab", help="the lab this listener belongs to, so teardown finds it")
    parser.add_argument("--addr", action="append", default=[])
    parser.add_argument("--tcp", type=int, action="append", default=[])
    parser.add_argument("--udp", type=int, action="append", default=[])
    parser.add_argument("--dual-stack", action="store_true", help="IPv6 sockets take IPv4 too")
    args = parser.parse_args(argv)
    responder = Responder()
    for address in args.addr or ["0.0.0.0", "::"]:
        for port in args.tcp:
            responder.bind(socket.SOCK_STREAM, address, port, args.dual_stack)
        for port in args.udp:
            responder.bind(socket.SOCK_DGRAM, address, port, args.dual_stack)
    responder.serve()


if __name__ == "__main__":
    main()
