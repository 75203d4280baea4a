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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DNS_PORT = 53
TIMEOUT = 2.0
MAX_UDP = 65535
HEADER_SIZE = 12
SOCKETS = 4
ROTATE_AFTER = 2000
READ_BATCH = 64


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
    raise no_answer(servers, problem)


Done = Callable[[bytes | None, BaseException | None], None]


@dataclass(eq=False)
class Pending:
    """A plain query out to one upstream, and what is left to try after it."""

    query: bytes
    question: bytes
    servers: tuple[str, ...]
    done: Done
    problem: BaseException | None = None
    timer: asyncio.TimerHandle | None = None


class Socket:
    """One long-lived socket connected to one upstream: the kernel only delivers
    datagrams from that server's address and port. A reply is taken only for a query
    waiting under its id with the same question, so a stray or forged datagram must
    guess a random id and the question both; each query gets a fresh random id.
    Read without a transport: every datagram waiting is read in one wake-up."""

    def __init__(self, pool: UdpPool, server: str, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.sock = socket.socket(family_of(server), socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect((server, DNS_PORT))
        self.waiting: dict[int, Pending] = {}
        self.sent = 0
        self.closed = False
        loop.add_reader(self.sock.fileno(), self.readable)

    def send(self, pending: Pending) -> None:
        query_id = secrets.randbits(16)
        while query_id in self.waiting:
            query_id = secrets.randbits(16)
        self.sock.send(query_id.to_bytes(2, "big") + pending.query[2:])
        self.sent += 1
        self.waiting[query_id] = pending
        pending.timer = self.loop.call_later(TIMEOUT, self.expired, query_id)

    def readable(self) -> None:
        for _ in range(READ_BATCH):
            if self.closed:
                return
            try:
                data = self.sock.recv(MAX_UDP)
            except BlockingIOError:
                return
            except OSError as exc:  # ICMP unreachable: the server is not there for anyone
                self.fail(exc)
                return
            self.received(data)

    def received(self, data: bytes) -> None:
        query_id = int.from_bytes(data[:2], "big")
        pending = self.waiting.get(query_id)
        if pending is None or len(data) < HEADER_SIZE:
            return
        echoed = data[HEADER_SIZE : HEADER_SIZE + len(pending.question)]
        if echoed.lower() != pending.question.lower():
            return
        self.forget(query_id)
        pending.done(pending.query[:2] + data[2:], None)

    def forget(self, query_id: int) -> Pending | None:
        pending = self.waiting.pop(query_id, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        if not self.waiting and self.sent >= ROTATE_AFTER:
            self.close()
        return pending

    def expired(self, query_id: int) -> None:
        pending = self.forget(query_id)
        if pending is not None:
            pending.problem = TimeoutError(f"no answer in {TIMEOUT:g} s")
            self.pool.next(pending)

    def fail(self, exc: BaseException) -> None:
        for query_id in list(self.waiting):
            pending = self.forget(query_id)
            if pending is not None:
                pending.problem = exc
                self.pool.next(pending)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class UdpPool:
    """A few long-lived sockets per upstream, so a query costs no socket of its own
    and no task: `send` takes a callback, called once with the answer or the problem.

    Each socket is retired after ROTATE_AFTER queries (closed once its last one is
    answered or expired) so the source port keeps changing, as with one socket per
    query. Bound to the event loop that first used it; another loop (a test's next
    asyncio.run) starts afresh.
    """

    def __init__(self) -> None:
        self.bound: asyncio.AbstractEventLoop | None = None
        self.sockets: dict[str, list[Socket]] = {}
        self.turn = 0

    def bind(self) -> asyncio.AbstractEventLoop:
        """The running loop; the sockets of an earlier loop are dropped."""
        loop = asyncio.get_running_loop()
        if loop is not self.bound:
            self.bound, self.sockets = loop, {}
        return loop

    def socket_for(self, server: str) -> Socket:
        loop = self.bind()
        found = self.sockets.setdefault(server, [])
        found[:] = [s for s in found if s.sent < ROTATE_AFTER]
        if len(found) < SOCKETS:
            found.append(Socket(self, server, loop))
            return found[-1]
        self.turn += 1
        return found[self.turn % len(found)]

    def send(self, query: bytes, question: bytes, servers: Sequence[str], done: Done) -> None:
        """Asks the servers in turn; `done` gets the first answer, or the last problem."""
        self.next(Pending(query, question, tuple(servers), done))

    def next(self, pending: Pending) -> None:
        while pending.servers:
            server, pending.servers = pending.servers[0], pending.servers[1:]
            try:
                self.socket_for(server).send(pending)
                return
            except OSError as exc:
                pending.problem = exc
        pending.done(None, pending.problem or OSError("no upstream"))

    async def ask(self, query: bytes, question: bytes, servers: Sequence[str]) -> bytes:
        """Like `ask` for a plain query over UDP (its question section given)."""
        future: asyncio.Future[bytes] = self.bind().create_future()

        def done(reply: bytes | None, problem: BaseException | None) -> None:
            if future.done():
                return
            if reply is not None:
                future.set_result(reply)
            else:
                future.set_exception(no_answer(servers, problem))

        self.send(query, question, servers, done)
        return await future


def no_answer(servers: Sequence[str], problem: BaseException | None) -> UpstreamError:
    return UpstreamError(f"no upstream answered ({', '.join(servers) or 'none'}): {problem}")
