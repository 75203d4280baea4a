"""Runs inside a container's network namespace for bench_dns: timed lookups.

stdin: {"server": ..., "names": [...], "parallel": N}; stdout: {"ms": [...], "seconds": S,
"failed": F}. Sequential when parallel is 1 (latency), concurrent otherwise (rate).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import dns.asyncquery
import dns.exception
import dns.message


async def one(server: str, name: str, gate: asyncio.Semaphore) -> float | None:
    async with gate:
        query = dns.message.make_query(name, "A")
        started = time.perf_counter()
        try:
            await dns.asyncquery.udp(query, server, timeout=2.0)
        except (OSError, dns.exception.DNSException):
            return None
        return (time.perf_counter() - started) * 1e3


async def run(server: str, names: list[str], parallel: int) -> dict[str, object]:
    gate = asyncio.Semaphore(parallel)
    started = time.perf_counter()
    found = await asyncio.gather(*(one(server, n, gate) for n in names))
    ms = [m for m in found if m is not None]
    return {"ms": ms, "seconds": time.perf_counter() - started, "failed": len(found) - len(ms)}


def main() -> None:
    job = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(run(job["server"], job["names"], int(job["parallel"])))))


if __name__ == "__main__":
    main()
