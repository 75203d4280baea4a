"""Datapath at 1,000,000 named-list entries (issue 16): new TCP connections per second to
a published port with no firewall, and with each backend enforcing a rule that names a
list of a million addresses, both ways: `from: [any], except: [list:big]` (the client
is not in the list: every new connection is a lookup that misses) and
`from: [list:big]` (the client is the list's last entry: a lookup that hits).

One lab, one run, rounds interleaving the setups; each measurement is paired with a
no-firewall measurement taken just before it, so a busy moment on the (shared) host hits
both halves of a pair, and the median of the paired ratios is what to compare. Each
setup proves itself in force by refusing a source it must refuse (192.0.2.7: in the
list for `except`, outside it for `from`).

    .venv/bin/python bench/bench_lists_datapath.py [--entries N] [--seconds S] [--rounds R]

`run()` returns the markdown table, with the command and the machine.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.datapath.labsetup import RATE_PORT, BenchLab, bench_lab
from bench.datapath.measure import BLOCKED_SOURCE, SOURCE, blocks_others, connection_rate
from bench.datapath.report import machine
from bench.datapath.setups import Setup, backend_setup
from dockwall.backends.iptables import IptablesBackend
from dockwall.backends.nftables import NftablesBackend
from dockwall.compile.ir import AddressSet, Allow, Filter, Guard, PortMatch, Ruleset

ENTRIES = 1_000_000
SECONDS = 3.0
ROUNDS = 3
FILLER = ipaddress.ip_network("100.64.0.0/10")
COMMAND = ".venv/bin/python bench/bench_lists_datapath.py"


def addresses(entries: int, last: str) -> tuple[str, ...]:
    """Every other address of 100.64.0.0/10 (no two merge into a prefix), then `last`,
    in address order as the list reader gives them."""
    base = int(FILLER.network_address)
    found = [int(ipaddress.IPv4Address(last))]
    found += [base + 2 * i for i in range(entries - 1)]
    return tuple(str(ipaddress.IPv4Address(n)) for n in sorted(found))


def ruleset(bench: BenchLab, entries: int, way: str) -> Ruleset:
    """The container's rate port open to `from: [any], except: [list:big]` (the list
    holds the blocked source) or `from: [list:big]` (the list holds the client)."""
    ports = (PortMatch("tcp", RATE_PORT, RATE_PORT),)
    if way == "except":
        found = AddressSet(
            "big", "big.txt", f"bench-except-{entries}", addresses(entries, BLOCKED_SOURCE)
        )
        allow = Allow(peers=None, ports=ports, original=True, except_lists=("big",))
    else:
        found = AddressSet("big", "big.txt", f"bench-from-{entries}", addresses(entries, SOURCE))
        allow = Allow(peers=(), ports=ports, original=True, lists=("big",))
    guard = Guard("bench", "bench", "bench", bench.endpoints, Filter((allow,)), None)
    return Ruleset(bench.bridges, (guard,), None, None, lists=(found,))


def setups(bench: BenchLab, entries: int) -> list[Setup]:
    found: list[Setup] = []
    for way, rule in (("except", "from any except list"), ("from", "from list")):
        rules = ruleset(bench, entries, way)
        for name, backend in (
            ("iptables", IptablesBackend(bench.lab.host)),
            ("nftables", NftablesBackend(bench.lab.host)),
        ):
            setup = backend_setup(f"{name} backend, {rule}", backend, rules)
            found.append(setup if name == "iptables" else without_listing(setup, bench))
    return found


def without_listing(setup: Setup, bench: BenchLab) -> Setup:
    """nftables removed by deleting dockwall's table, which is all it is: a plan of the
    reset would first list a million elements, which is not what this bench measures."""

    def remove() -> None:
        bench.lab.host.run(["nft", "delete", "table", "inet", "dockwall"], timeout=600)

    return Setup(setup.name, setup.install, remove)


@dataclass(frozen=True)
class Row:
    """One setup's rates, each beside the no-firewall rate measured just before it."""

    setup: str
    install_seconds: float
    rates: tuple[float, ...]
    baselines: tuple[float, ...]
    blocked: bool

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def ratio(self) -> float:
        """The median of the paired ratios: a busy moment hits both halves of a pair."""
        return statistics.median(r / b for r, b in zip(self.rates, self.baselines, strict=True))


def lists_lab() -> AbstractContextManager[BenchLab]:
    """A fresh lab (named after DOCKWALL_LAB_PREFIX, default `l`), always torn down."""
    return bench_lab(os.environ.get("DOCKWALL_LAB_PREFIX", "l"))


def measure_rows(entries: int, seconds: float, rounds: int) -> list[Row]:
    """Each round measures every setup right after a no-firewall sample of its own."""
    with lists_lab() as bench:
        chosen = setups(bench, entries)
        rates: dict[str, list[float]] = {s.name: [] for s in chosen}
        baselines: dict[str, list[float]] = {s.name: [] for s in chosen}
        install: dict[str, float] = {}
        blocked: dict[str, bool] = dict.fromkeys(rates, True)
        for _ in range(rounds):
            for setup in chosen:
                baselines[setup.name].append(connection_rate(bench, seconds)[0])
                started = time.monotonic()
                setup.install()
                install[setup.name] = time.monotonic() - started
                try:
                    rates[setup.name].append(connection_rate(bench, seconds)[0])
                    blocked[setup.name] &= blocks_others(bench)
                finally:
                    setup.remove()
        return [
            Row(name, install[name], tuple(rates[name]), tuple(baselines[name]), blocked[name])
            for name in rates
        ]


def table(rows: Sequence[Row], entries: int) -> str:
    lines = [
        f"A named list of {entries:,} addresses on a published port (median of "
        f"{len(rows[0].rates)} rounds; each rate paired with a no-firewall rate measured "
        "just before it, `vs none` is the median of those ratios)",
        "",
        "| setup | new TCP conn/s | no firewall, paired | vs none | each round | load s | "
        "refuses what it must |",
        "| --- | ---: | ---: | ---: | --- | ---: | :---: |",
    ]
    lines += [
        f"| {r.setup} | {r.rate:,.0f} | {statistics.median(r.baselines):,.0f} | {r.ratio:.0%} | "
        f"{' '.join(f'{a / b:.0%}' for a, b in zip(r.rates, r.baselines, strict=True))} | "
        f"{r.install_seconds:.2f} | {'yes' if r.blocked else 'NO'} |"
        for r in rows
    ]
    return "\n".join(lines)


def run(entries: int = ENTRIES, seconds: float = SECONDS, rounds: int = ROUNDS) -> str:
    rows = measure_rows(entries, seconds, rounds)
    options = [
        f"--{name} {value:g}"
        for name, value, default in (
            ("entries", entries, ENTRIES),
            ("seconds", seconds, SECONDS),
            ("rounds", rounds, ROUNDS),
        )
        if value != default
    ]
    return (
        table(rows, entries)
        + f"\n\nReproduce: `{' '.join([COMMAND, *options])}` (as root; {seconds:g} s per "
        f"measurement). Load average at the end: {Path('/proc/loadavg').read_text().strip()}. "
        f"Machine: {machine()}.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    sys.stdout.write(run(args.entries, args.seconds, max(1, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
