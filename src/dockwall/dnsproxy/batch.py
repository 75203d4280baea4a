"""Set updates of answers that arrive together go to the kernel in one transaction.

A subprocess update (`nft -f -`, `ipset restore`) takes a few milliseconds; 64 answers
held at once would queue 64 of them past the hold limit. While one update runs, the
next answers wait and then go together, so the cost per answer falls as the load rises.

Updates run in a thread even by netlink (microseconds, mostly): an nf_tables write
sleeps in the kernel for 15-40 ms at times (while `nft` lists the ruleset: the agent's
drift check, once a second), which on the event loop would stall every other query; off
it, only the answers waiting for that update wait. (On the loop it saved 0.05-0.1 ms
at p50, docs/benchmarks.md.)
"""

from __future__ import annotations

import asyncio

from dockwall.dnsproxy.kernelsets import Element, KernelSets


def merged(elements: list[Element]) -> list[Element]:
    """One element per (pattern, address), with the longest lifetime asked for."""
    best: dict[tuple[str, str], Element] = {}
    for item in elements:
        key = (item.pattern, item.address)
        if key not in best or best[key].seconds < item.seconds:
            best[key] = item
    return list(best.values())


class Batcher:
    def __init__(self) -> None:
        self.pending: list[tuple[KernelSets, list[Element], asyncio.Future[None]]] = []
        self.worker: asyncio.Task[None] | None = None

    async def add(self, sets: KernelSets, elements: list[Element]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((sets, elements, done))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self.drain())
        await done

    async def drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            groups: dict[int, list[tuple[KernelSets, list[Element], asyncio.Future[None]]]] = {}
            for item in batch:
                groups.setdefault(id(item[0]), []).append(item)
            for items in groups.values():
                sets = items[0][0]
                elements = merged([e for _, found, _ in items for e in found])
                try:
                    await asyncio.to_thread(sets.add, elements)
                except Exception as exc:  # every waiter of this batch fails closed
                    for _, _, done in items:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for _, _, done in items:
                    if not done.done():
                        done.set_result(None)
