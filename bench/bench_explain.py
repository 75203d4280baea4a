"""How long `dockwall explain` takes on a host with 10,000 rules (target: under 100 ms).

Builds the lab's Docker 20.10 ruleset plus 10,000 hand-written rules in a chain jumped
to from DOCKER-USER, which every forwarded packet walks in full (first packet and
reply): the worst case for explain, because lazy parsing saves nothing when the packet
enters the big chain. Times each stage and the whole, as the median of RUNS runs, with
every cache emptied before each run (a fresh `dockwall explain` process starts cold).
Reading the live ruleset (iptables-save itself) is not included: run it on the host
to see that cost.

    .venv/bin/python bench/bench_explain.py [RULES]

`run()` returns the same table as markdown, for `python -m bench`.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dockwall.explain.endpoints import start
from dockwall.explain.host import LiveContainer, LiveHost
from dockwall.explain.hostnet import HostNet, parse_addresses, parse_routes
from dockwall.explain.iptables.parse import clear_memo, parse_iptables_save
from dockwall.explain.live_ruleset import LiveRuleset
from dockwall.explain.simulate import explain_connection

DATA = Path(__file__).parent.parent / "tests" / "unit" / "data" / "rulesets" / "docker20-lab"
RUNS = 15
RULES = 10_000
COMMAND = ".venv/bin/python bench/bench_explain.py"


def ruleset_text(count: int) -> str:
    """Docker's saved rules with `count` source-address drops that never match the probe."""
    saved = (DATA / "iptables-save.txt").read_text()
    rules = [
        f"-A DOCKWALL-BIG -s 10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}/32 "
        f"-p tcp -m tcp --dport {1 + i % 60000} -m comment --comment dockwall -j DROP"
        for i in range(count)
    ]
    extra = ":DOCKWALL-BIG - [0:0]\n-A DOCKER-USER -j DOCKWALL-BIG\n" + "\n".join(rules) + "\n"
    head, _, tail = saved.partition(":DOCKER-USER - [0:0]\n")
    return head + ":DOCKER-USER - [0:0]\n" + extra + tail


def host_net() -> HostNet:
    routes = parse_routes((DATA / "ip-route4.json").read_text(), 4)
    return HostNet(parse_addresses((DATA / "ip-addr.json").read_text()), routes)


@dataclass(frozen=True)
class Row:
    stage: str
    wall_ms: float
    cpu_ms: float


@contextmanager
def collector(on: bool) -> Iterator[None]:
    enabled = gc.isenabled()
    if on:
        gc.enable()
    else:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def timed(stage: str, action: Callable[[], object], *, gc_on: bool, runs: int) -> Row:
    """Median wall and CPU time in milliseconds (CPU time shows the cost on a busy host)."""
    wall, cpu = [], []
    for _ in range(runs):
        clear_memo()
        gc.collect()
        with collector(gc_on):
            begin, begin_cpu = time.perf_counter(), time.process_time()
            result = action()
            wall.append((time.perf_counter() - begin) * 1000)
            cpu.append((time.process_time() - begin_cpu) * 1000)
        del result
    return Row(stage, statistics.median(wall), statistics.median(cpu))


def measure(count: int = RULES, runs: int = RUNS) -> tuple[int, list[Row]]:
    text = ruleset_text(count)
    net = host_net()
    web = LiveContainer("web", {4: (0xAC110002,), 6: ()})

    def state(lazy: bool) -> LiveHost:
        return LiveHost(
            LiveRuleset(parse_iptables_save(text, 4, "iptables-nft", lazy=lazy)), net, [web]
        )

    def explain_once() -> object:
        host = state(lazy=True)
        begin = start(host, "192.0.2.100", "host:8080/tcp")
        result = explain_connection(host, begin.packet, begin.local_origin)
        assert result.verdict == "accept", result.verdict
        return result

    parsed = state(lazy=False)
    begin = start(parsed, "192.0.2.100", "host:8080/tcp")
    rows = [
        timed("split into chains (lazy read)", lambda: state(lazy=True), gc_on=False, runs=runs),
        timed(
            "parse every rule (eager, as audit reads)",
            lambda: state(lazy=False),
            gc_on=False,
            runs=runs,
        ),
        timed(
            "simulate on parsed rules (both packets)",
            lambda: explain_connection(parsed, begin.packet, begin.local_origin),
            gc_on=False,
            runs=runs,
        ),
        timed(
            "**explain: read + parse + simulate, as the CLI runs it**",
            explain_once,
            gc_on=False,
            runs=runs,
        ),
        timed("explain, cyclic GC on (library use)", explain_once, gc_on=True, runs=runs),
    ]
    return parsed.ruleset.rule_count(), rows


def markdown(count: int, rows: list[Row], runs: int = RUNS) -> str:
    head = (
        f"{count:,} rules (Docker 20.10's plus 10,000 in one chain every forwarded packet "
        f"walks); median of {runs} runs, caches emptied before each. "
        f"Reproduce: `{COMMAND}`.\n\n"
        "| stage | wall | CPU |\n|---|---|---|\n"
    )
    return head + "".join(f"| {r.stage} | {r.wall_ms:.1f} ms | {r.cpu_ms:.1f} ms |\n" for r in rows)


def run() -> str:
    """The benchmark as a markdown table, for `python -m bench`."""
    count, rows = measure()
    return markdown(count, rows)


def main() -> None:
    rules = int(sys.argv[1]) if len(sys.argv) > 1 else RULES
    count, rows = measure(rules)
    sys.stdout.write(markdown(count, rows))


if __name__ == "__main__":
    main()
