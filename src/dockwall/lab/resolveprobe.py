"""Resolve, then connect at once, from inside one namespace (a container's).

Run by the lab (`python -m dockwall.lab.resolveprobe` in the container's network
namespace) with a JSON list of lookups on stdin; prints one JSON result per lookup.
Each lookup asks `server` (the container's own resolver: the lab's DNS on the default
bridge, Docker's embedded 127.0.0.11 on a user network) over UDP, retries over TCP
when the answer is truncated (as a stub resolver does), then opens a TCP connection to
every address it got, immediately, and reports how each ended and how long it took.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from dockwall.lab.prober import tcp_open

PARALLEL = 16
NETSTAT = "/proc/net/netstat"


async def lookup(item: dict[str, Any]) -> dict[str, Any]:
    query = dns.message.make_query(item["name"], item.get("type", "A"))
    timeout = float(item.get("timeout", 2.0))
    server = item["server"]
    result: dict[str, Any] = {"name": item["name"], "addresses": [], "tcp": False}
    try:
        if item.get("tcp_only"):
            reply = await dns.asyncquery.tcp(query, server, timeout=timeout)
            result["tcp"] = True
        else:
            reply = await dns.asyncquery.udp(query, server, timeout=timeout)
            if reply.flags & dns.flags.TC:
                reply = await dns.asyncquery.tcp(query, server, timeout=timeout)
                result["tcp"] = True
    except (OSError, TimeoutError, dns.exception.DNSException) as exc:
        result["rcode"] = f"error: {type(exc).__name__}"
        return result
    result["rcode"] = dns.rcode.to_text(reply.rcode())
    addresses = [
        r.address
        for rrset in reply.answer
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for r in rrset
    ]
    result["addresses"] = addresses
    port = item.get("port")
    if port:
        outcomes = []
        for address in addresses:
            started = time.perf_counter()
            outcome = await tcp_open(address, int(port), None, float(item.get("connect", 1.0)))
            outcomes.append(
                {
                    "address": address,
                    "outcome": outcome,
                    "ms": (time.perf_counter() - started) * 1e3,
                }
            )
        result["connects"] = outcomes
    return result


async def run(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            return await lookup(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


def syn_retransmits() -> int:
    """TCPSynRetrans of this network namespace: a first SYN the firewall dropped shows
    here (the kernel resends it after a second), whatever the timing on a busy machine."""
    lines = [line.split() for line in Path(NETSTAT).read_text().splitlines()]
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        if head[:1] == ["TcpExt:"] and "TCPSynRetrans" in head:
            return int(values[head.index("TCPSynRetrans")])
    return 0


def main() -> None:
    """Prints {"results": [...], "syn_retransmits": N} for the batch on stdin."""
    items = json.loads(sys.stdin.read())
    before = syn_retransmits()
    results = asyncio.run(run(items))
    print(json.dumps({"results": results, "syn_retransmits": syn_retransmits() - before}))


if __name__ == "__main__":
    main()
