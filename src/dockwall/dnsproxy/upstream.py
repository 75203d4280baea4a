"""Asking the upstream resolvers, by UDP or TCP, with the client's query as it came.

The query is passed on byte for byte (its flags and EDNS options included), so the
answer the client gets is the upstream's own, unless dockwall refuses it. Plain
queries over UDP (`UdpPool`) go out on long-lived sockets under an id of the pool's
own, the client's id put back on the answer; others get a socket per query (`udp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
from collections.abc import Sequence
from typing import Any

DNS_PORT = 53
TIMEOUT = 2.0
MAX_UDP = 65535
HEADER_SIZE = 12
SOCKETS = 4
ROTATE_AFTER = 2000


class UpstreamError(Exception):
    """No upstream answered in time."""


def family_of(server: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in server else socket.AF_INET


async def udp(query: bytes, server: str, timeout: float = TIMEOUT) -> bytes:
    """Replies with another id (late answers to an earlier query) are skipped."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(family_of(server), socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (server, DNS_PORT))
        await loop.sock_sendall(sock, query)
        async with asyncio.timeout(timeout):
            while True:
                reply = await loop.sock_recv(sock, MAX_UDP)
                if reply[:2] == query[:2]:
                    return reply
    finally:
        sock.close()


async def tcp(query: bytes, server: str, timeout: float = TIMEOUT) -> bytes:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(server, DNS_PORT)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(length)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def ask(query: bytes, servers: Sequence[str], use_tcp: bool) -> bytes:
    """The first upstream that answers, tried in order."""
    problem: BaseException | None = None
    for server in servers:
        try:
            return await (tcp if use_tcp else udp)(query, server)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error) as exc:
            problem = exc
    raise UpstreamError(f"no upstream answered ({', '.join(servers) or 'none'}): {problem}")


class Socket(asyncio.DatagramProtocol):
    """One long-lived socket connected to one upstream: the kernel only delivers
    datagrams from that server's address and port. A reply is taken only for a query
    waiting under its id with the same question, so a stray or forged datagram must
    guess a random id and the question both; each query gets a fresh random id."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[int, tuple[bytes, bytes, asyncio.Future[bytes]]] = {}
        self.sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, query: bytes, question: bytes) -> asyncio.Future[bytes]:
        assert self.transport is not None
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        query_id = secrets.randbits(16)
        while query_id in self.waiting:
            query_id = secrets.randbits(16)
        self.waiting[query_id] = (query[:2], question.lower(), future)
        self.sent += 1
        self.transport.sendto(query_id.to_bytes(2, "big") + query[2:])
        future.add_done_callback(lambda _: self.waiting.pop(query_id, None))
        return future

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) < HEADER_SIZE:
            return
        found = self.waiting.get(int.from_bytes(data[:2], "big"))
        if found is None:
            return
        client_id, question, future = found
        echoed = data[HEADER_SIZE : HEADER_SIZE + len(question)].lower()
        if echoed == question and not future.done():
            future.set_result(client_id + data[2:])

    def error_received(self, exc: Exception) -> None:
        """An ICMP error on a connected socket: the server is not there for anyone."""
        self.fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(exc or ConnectionError("upstream socket closed"))

    def fail(self, exc: Exception) -> None:
        for _, _, future in list(self.waiting.values()):
            if not future.done():
                future.set_exception(exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class UdpPool:
    """A few long-lived sockets per upstream, so a query costs no socket of its own.

    Each socket is retired after ROTATE_AFTER queries (closed once its last one is
    answered) so the source port keeps changing, as with one socket per query. Bound
    to the event loop that first used it; another loop (a test's next asyncio.run)
    starts afresh.
    """

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sockets: dict[str, list[Socket]] = {}
        self.turn = 0

    async def socket_for(self, server: str) -> Socket:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:
            self.loop, self.sockets = loop, {}
        found = self.sockets.setdefault(server, [])
        for old in [s for s in found if s.sent >= ROTATE_AFTER]:
            found.remove(old)
            retire(old)
        if len(found) < SOCKETS:
            _, protocol = await loop.create_datagram_endpoint(
                Socket, remote_addr=(server, DNS_PORT), family=family_of(server)
            )
            found.append(protocol)
            return protocol
        self.turn += 1
        return found[self.turn % len(found)]

    async def udp(self, query: bytes, question: bytes, server: str) -> bytes:
        sock = await self.socket_for(server)
        future = sock.send(query, question)
        async with asyncio.timeout(TIMEOUT):
            return await future

    async def ask(self, query: bytes, question: bytes, servers: Sequence[str]) -> bytes:
        """Like `ask` for a plain query over UDP (its question section given)."""
        problem: BaseException | None = None
        for server in servers:
            try:
                return await self.udp(query, question, server)
            except (OSError, TimeoutError) as exc:
                problem = exc
        raise UpstreamError(f"no upstream answered ({', '.join(servers) or 'none'}): {problem}")


def retire(sock: Socket) -> None:
    """Closed once nothing waits on it any more (at most TIMEOUT from now)."""
    if not sock.waiting:
        sock.close()
        return
    asyncio.get_running_loop().call_later(TIMEOUT + 0.1, sock.close)
