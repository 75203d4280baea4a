"""Datapath cost of an ingress allowlist of 10,000 sources on a published port.

Measures, in one lab and one run, new TCP connections per second and bulk TCP
throughput from the lab internet to a container's published ports, with no firewall,
with the nftables backend, with a naive linear iptables chain and with the iptables
backend, and prints a markdown table with ratios against no firewall.

    .venv/bin/python bench/bench_datapath.py [--seconds 3] [--entries 10000] [--rounds 3]

`run()` returns the same table as markdown, with the command and the machine, for
`python -m bench`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.datapath.labsetup import BenchLab, bench_lab
from bench.datapath.measure import Sample, sample
from bench.datapath.report import machine
from bench.datapath.setups import (
    Setup,
    iptables_backend,
    linear_iptables,
    nftables_setup,
    no_firewall,
)

MAX_SECONDS = 10.0
MAX_ROUNDS = 5
SECONDS = 3.0
ENTRIES = 10_000
ROUNDS = 3
COMMAND = ".venv/bin/python bench/bench_datapath.py"


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


def measure_rows(seconds: float, entries: int, rounds: int) -> list[Row]:
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


def command(seconds: float, entries: int, rounds: int) -> str:
    options = [
        f"--{name} {value:g}"
        for name, value, default in (
            ("seconds", seconds, SECONDS),
            ("entries", entries, ENTRIES),
            ("rounds", rounds, ROUNDS),
        )
        if value != default
    ]
    return " ".join([COMMAND, *options])


def run(seconds: float = SECONDS, entries: int = ENTRIES, rounds: int = ROUNDS) -> str:
    """The markdown: the table, how to reproduce it, and the machine it ran on (as root;
    it brings up a lab of its own and always tears it down)."""
    seconds = min(seconds, MAX_SECONDS)
    rounds = max(1, min(rounds, MAX_ROUNDS))
    rows = measure_rows(seconds, entries, rounds)
    return (
        table(rows, entries) + f"\n\nReproduce: `{command(seconds, entries, rounds)}` (as root; "
        f"{seconds:g} s per measurement). Machine: {machine()}.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    sys.stdout.write(run(args.seconds, args.entries, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
