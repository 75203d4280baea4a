"""Sends probes from inside one network namespace and reports what got through.

The lab starts this program once per source namespace (an internet host, a container,
the Docker host) and feeds it batches of probes as JSON lines, so a whole matrix costs
one process per source and one timeout, not one per probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from typing import Any

Probe = dict[str, Any]


async def tcp_open(dst: str, port: int, src: str | None, timeout: float) -> bool:
    """Open means the three-way handshake completed; refused or silent means closed."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(dst, port, local_addr=(src, 0) if src else None),
            timeout,
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout)
    return True


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, got: asyncio.Future[bool]) -> None:
        self.got = got

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not self.got.done():
            self.got.set_result(True)

    def error_received(self, exc: Exception) -> None:
        if not self.got.done():
            self.got.set_result(False)


async def udp_open(dst: str, port: int, src: str | None, timeout: float) -> bool:
    """Open means the datagram was answered; UDP has no handshake to rely on."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bool] = loop.create_future()
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Reply(got),
            remote_addr=(dst, port),
            local_addr=(src, 0) if src else None,
            family=family,
        )
    except OSError:
        return False
    try:
        transport.sendto(b"dockwall-probe")
        return await asyncio.wait_for(got, timeout)
    except (OSError, TimeoutError):
        return False
    finally:
        transport.close()


async def run_probe(probe: Probe) -> bool:
    check = tcp_open if probe["proto"] == "tcp" else udp_open
    return await check(probe["dst"], int(probe["port"]), probe.get("src"), float(probe["timeout"]))


async def run_batch(batch: list[Probe]) -> list[bool]:
    return list(await asyncio.gather(*(run_probe(p) for p in batch)))


def main() -> None:
    """Reads one JSON list of probes per line and answers with one JSON list of booleans."""
    for line in sys.stdin:
        results = asyncio.run(run_batch(json.loads(line)))
        sys.stdout.write(json.dumps(results) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
