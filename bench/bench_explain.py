"""How long `dockwall explain` takes on a host with 10,000 rules (target: under 100 ms).

Builds the lab's Docker 20.10 ruleset plus 10,000 hand-written rules in a chain jumped
to from DOCKER-USER, which every forwarded packet walks in full (first packet and
reply), then times parsing and simulation separately and together. Reading the live
ruleset (iptables-save itself) is not included: run it on the host to see that cost.

    .venv/bin/python bench/bench_explain.py [RULES]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dockwall.explain.endpoints import start
from dockwall.explain.hostnet import HostNet, parse_addresses, parse_routes
from dockwall.explain.addresses import parse_net
from dockwall.explain.iptables_parse import clear_memo, parse_iptables_save
from dockwall.explain.ruleset import Ruleset
from dockwall.explain.simulate import explain_connection
from dockwall.explain.state import Container, HostState

DATA = Path(__file__).parent.parent / "tests" / "unit" / "data" / "rulesets" / "docker20-lab"
RUNS = 15


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


def timed(action: Callable[[], object]) -> str:
    """Median wall and CPU time in milliseconds (CPU time shows the cost on a busy host)."""
    wall, cpu = [], []
    for _ in range(RUNS):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append((time.perf_counter() - begin) * 1000)
        cpu.append((time.process_time() - begin_cpu) * 1000)
    return f"{statistics.median(wall):7.1f} ms wall {statistics.median(cpu):7.1f} ms CPU"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    text = ruleset_text(count)
    net = host_net()
    web = Container("web", {4: (0xAC110002,), 6: ()})

    def parse() -> HostState:
        clear_memo()
        parse_net.cache_clear()
        tables = parse_iptables_save(text, 4, "iptables-nft")
        return HostState(Ruleset(tables), net, [web])

    def explain_once() -> None:
        state = parse()
        begin = start(state, "192.0.2.100", "host:8080/tcp")
        result = explain_connection(state, begin.packet, begin.local_origin)
        assert result.verdict == "accept", result.verdict

    state = parse()
    print(f"rules: {state.ruleset.rule_count()}")
    print(f"parse iptables-save:      {timed(parse)}")
    begin = start(state, "192.0.2.100", "host:8080/tcp")
    simulate = timed(lambda: explain_connection(state, begin.packet, begin.local_origin))
    print(f"simulate (both packets):  {simulate}")
    print(f"parse + simulate:         {timed(explain_once)}")


if __name__ == "__main__":
    main()
