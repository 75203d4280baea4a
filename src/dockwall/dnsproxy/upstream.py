"""Asking the upstream resolvers, by UDP or TCP, with the client's query as it came.

The query is passed on byte for byte (its id, flags and EDNS options included), so the
answer the client gets is the upstream's own, unless dockwall refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence

DNS_PORT = 53
TIMEOUT = 2.0
MAX_UDP = 65535


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
