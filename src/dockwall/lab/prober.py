"""Sends probes from inside one network namespace and reports what got through.

The lab starts this program once per source namespace (an internet host, a container,
the Docker host) and feeds it batches of probes as JSON lines, so a whole matrix costs
one process per source and one timeout, not one per probe. Each answer is true when
the port is open; with `--outcomes` it says how it ended instead: "open", "refused"
(a TCP reset, an ICMP port unreachable), "unreachable" (another ICMP error) or
"timeout" (nothing came back: a silent drop), which is what tells a REJECT from a DROP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from typing import Any, Literal

Probe = dict[str, Any]
Outcome = Literal["open", "refused", "unreachable", "timeout"]


def failure(exc: BaseException) -> Outcome:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "refused" if isinstance(exc, ConnectionRefusedError) else "unreachable"


async def tcp_open(dst: str, port: int, src: str | None, timeout: float) -> Outcome:
    """Open means the three-way handshake completed."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(dst, port, local_addr=(src, 0) if src else None),
            timeout,
        )
    except (OSError, TimeoutError) as exc:
        return failure(exc)
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout)
    return "open"


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, got: asyncio.Future[Outcome]) -> None:
        self.got = got

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not self.got.done():
            self.got.set_result("open")

    def error_received(self, exc: Exception) -> None:
        if not self.got.done():
            self.got.set_result(failure(exc))


async def udp_open(dst: str, port: int, src: str | None, timeout: float) -> Outcome:
    """Open means the datagram was answered; UDP has no handshake to rely on. A connected
    socket hears ICMP port unreachable as ECONNREFUSED."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[Outcome] = loop.create_future()
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Reply(got),
            remote_addr=(dst, port),
            local_addr=(src, 0) if src else None,
            family=family,
        )
    except OSError as exc:
        return failure(exc)
    try:
        transport.sendto(b"dockwall-probe")
        return await asyncio.wait_for(got, timeout)
    except (OSError, TimeoutError) as exc:
        return failure(exc)
    finally:
        transport.close()


async def run_probe(probe: Probe) -> Outcome:
    check = tcp_open if probe["proto"] == "tcp" else udp_open
    return await check(probe["dst"], int(probe["port"]), probe.get("src"), float(probe["timeout"]))


async def run_batch(batch: list[Probe]) -> list[Outcome]:
    return list(await asyncio.gather(*(run_probe(p) for p in batch)))


def main() -> None:
    """Reads one JSON list of probes per line and answers with one JSON list of booleans
    (or of outcomes, with `--outcomes`)."""
    detailed = "--outcomes" in sys.argv[1:]
    for line in sys.stdin:
        results = asyncio.run(run_batch(json.loads(line)))
        answers = results if detailed else [r == "open" for r in results]
        sys.stdout.write(json.dumps(answers) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
