"""Datapath cost of an ingress allowlist of 10,000 sources on a published port.

Measures, in one lab and one run, new TCP connections per second and bulk TCP
throughput from the lab internet to a container's published ports, with no firewall,
with the nftables backend, with a naive linear iptables chain and with the iptables
backend, and prints a markdown table with ratios against no firewall.

    .venv/bin/python bench/bench_datapath.py [--seconds 3] [--entries 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from datapath.labsetup import BenchLab, bench_lab
from datapath.measure import Sample, sample
from datapath.setups import (
    Setup,
    iptables_backend,
    linear_iptables,
    nftables_setup,
    no_firewall,
)

MAX_SECONDS = 10.0
MAX_ROUNDS = 5


@dataclass(frozen=True)
class Row:
    setup: str
    install_seconds: float
    samples: tuple[Sample, ...]

    @property
    def rate(self) -> float:
        return statistics.median(s.connections_per_second for s in self.samples)

    @property
    def gbits(self) -> float:
        return statistics.median(s.gbit_per_second for s in self.samples)


def setups(bench: BenchLab, entries: int) -> list[Setup]:
    found = [no_firewall(), nftables_setup(bench, entries), linear_iptables(bench, entries)]
    iptables = iptables_backend(bench, entries)
    return found if iptables is None else [*found, iptables]


def measure(bench: BenchLab, setup: Setup, seconds: float) -> tuple[float, Sample]:
    started = time.monotonic()
    setup.install()
    installed = time.monotonic() - started
    try:
        return installed, sample(bench, seconds)
    finally:
        setup.remove()


def run(seconds: float, entries: int, rounds: int) -> list[Row]:
    """Rounds interleave the setups, so a noisy moment on the host hits all of them."""
    with bench_lab() as bench:
        chosen = setups(bench, entries)
        results: dict[str, list[Sample]] = {s.name: [] for s in chosen}
        install: dict[str, float] = {}
        for _ in range(rounds):
            for setup in chosen:
                install[setup.name], result = measure(bench, setup, seconds)
                results[setup.name].append(result)
        return [Row(name, install[name], tuple(found)) for name, found in results.items()]


def table(rows: Sequence[Row], entries: int) -> str:
    base = rows[0]
    lines = [
        f"Ingress allowlist of {entries:,} source addresses on a published port "
        f"(median of {len(base.samples)} rounds)",
        "",
        "| setup | new TCP conn/s | vs none | bulk TCP Gbit/s | vs none | load s | "
        "others blocked |",
        "| --- | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for row in rows:
        blocked = all(s.blocks_others for s in row.samples)
        lines.append(
            f"| {row.setup} | {row.rate:,.0f} | {row.rate / base.rate:.0%} | "
            f"{row.gbits:.2f} | {row.gbits / base.gbits:.0%} | {row.install_seconds:.2f} | "
            f"{'yes' if blocked else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    seconds = min(args.seconds, MAX_SECONDS)
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    rows = run(seconds, args.entries, rounds)
    print(table(rows, args.entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
