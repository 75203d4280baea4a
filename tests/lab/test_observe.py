"""The drop log in the lab: refused connections named in `dockwall logs`, both backends.

One lab for the module; each backend gets one agent and one test that checks the whole
matrix (ingress, egress, peers, defaults; IPv4 and IPv6) with real packets, then a
recreated container, then a flood. Waits are bounded (EVENT_BOUND); how fast a drop
reaches the journal is printed (run with -s) and measured in bench/bench_nflog.py.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockwall.backends.base import RuleCounter
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Probe, Prober
from dockwall.observe.counters import chain_totals
from dockwall.runner import SubprocessRunner, netns_path
from tests.conftest import lab_name, own_lab

from .agent_helpers import (
    EVENT_BOUND,
    OTHER_V4,
    OTHER_V6,
    Agents,
    LabCli,
    remove_container,
    run_container,
    wait_until,
)

pytestmark = pytest.mark.lab

INET_V4, INET_V6 = "203.0.113.10", "2001:db8:203::10"
FLOOD = str(Path(__file__).resolve().parent / "syn_flood.py")
POLICY = """\
version: 1
defaults: {ingress: deny, egress: deny, peers: deny}
log: {rate: 20/second, burst: 50}
containers:
  - name: web
    ingress:
      - port: 8080/tcp
        from: [192.0.2.100/32, "2001:db8:100::100/128"]
    egress:
      - to: [192.0.2.100/32]
        port: 80/tcp
"""
WEB_LINE = 5


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with own_lab(lab_name("o")) as lab:
        yield lab


def logs(cli: LabCli, since: float) -> list[dict[str, Any]]:
    """`dockwall logs --json`, entries from `since` on."""
    out = cli.run("logs", "--json", check=False).stdout
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [e for e in entries if e.get("ts", 0) >= since]


def find(entries: list[dict[str, Any]], **want: Any) -> dict[str, Any] | None:
    return next((e for e in entries if all(e.get(k) == v for k, v in want.items())), None)


def wait_for(cli: LabCli, since: float, wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Until every wanted entry is in the log (bounded); the entries then seen."""
    seen: list[dict[str, Any]] = []

    def present() -> bool:
        nonlocal seen
        seen = logs(cli, since)
        return all(find(seen, **w) for w in wanted)

    wait_until(present, EVENT_BOUND, interval=0.5)
    return seen


def address(prober: Prober, name: str, family: int) -> str:
    return prober.container_address(name, family)


def probe_all(lab: Lab, prober: Prober) -> None:
    """Every refused path at once: one prober per namespace, probes concurrent."""
    inet = netns_path(lab.names.inet_ns)
    prober.run(
        inet,
        [
            Probe(t.HOST_UPLINK_V4, 8080, "tcp", OTHER_V4),
            Probe(t.HOST_UPLINK_V4, 5432, "tcp", OTHER_V4),
            Probe(t.HOST_UPLINK_V6, 8080, "tcp", OTHER_V6),
            Probe(t.HOST_UPLINK_V6, 5432, "tcp", OTHER_V6),
        ],
    )
    for name in ("web", "db"):
        ns = prober.container_netns(name)
        prober.run(ns, [Probe(INET_V4, 80, "tcp"), Probe(INET_V6, 80, "tcp")])
    worker = prober.container_netns("worker")
    db4, db6 = address(prober, "db", 4), address(prober, "db", 6)
    prober.run(worker, [Probe(db4, 5432, "tcp"), Probe(db6, 5432, "tcp")])


def expected(prober: Prober) -> list[dict[str, Any]]:
    web = f"policy.yaml:{WEB_LINE}"
    found: list[dict[str, Any]] = []
    for other, inet, family in ((OTHER_V4, INET_V4, 4), (OTHER_V6, INET_V6, 6)):
        found += [
            {"direction": "ingress", "container": "web", "remote": other, "port": 80,
             "proto": "tcp", "policy": web},
            {"direction": "ingress", "container": "db", "remote": other, "port": 5432,
             "policy": "defaults"},
            {"direction": "egress", "container": "web", "remote": inet, "port": 80,
             "policy": web},
            {"direction": "egress", "container": "db", "remote": inet, "port": 80,
             "policy": "defaults"},
            {"direction": "peers", "container": "worker", "remote_container": "db",
             "remote": address(prober, "db", family), "port": 5432,
             "policy": "defaults (peers: deny)", "project": "shop", "service": "worker"},
        ]  # fmt: skip
    return found


def check_matrix(lab: Lab, cli: LabCli) -> None:
    prober = Prober(lab, timeout=1.0)
    since = time.time()
    probe_all(lab, prober)
    wanted = expected(prober)
    seen = wait_for(cli, since, wanted)
    missing = [w for w in wanted if not find(seen, **w)]
    assert not missing, f"not in `dockwall logs --json`: {missing}\nseen: {seen}"
    first = min(e["ts"] for e in seen if e.get("kind") == "drop")
    print(f"first drop journalled {first - since:.3f} s after the probes started")


def check_recreated(lab: Lab, cli: LabCli) -> None:
    """A container removed and started again on a new address: its old drop keeps its
    name, and the old address, now another container's, names that one."""
    prober = Prober(lab, timeout=1.0)
    old, new = "172.30.0.50", "172.30.0.51"
    run_container(lab, "cache", network="shop", ipv4=old)
    since = time.time()
    first = {"direction": "egress", "container": "cache", "address": old, "remote": INET_V4}
    wait_until(lambda: bool(probe_one(prober, "cache") or find(logs(cli, since), **first)), 60)
    assert find(wait_for(cli, since, [first]), **first), "the first cache drop is not logged"
    remove_container(lab, "cache")
    run_container(lab, "other", network="shop", ipv4=old)
    run_container(lab, "cache", network="shop", ipv4=new)
    later = time.time()
    second = [
        {"direction": "egress", "container": "cache", "address": new, "remote": INET_V4},
        {"direction": "egress", "container": "other", "address": old, "remote": INET_V4},
    ]

    def logged() -> bool:
        probe_one(prober, "cache")
        probe_one(prober, "other")
        entries = logs(cli, later)
        return all(find(entries, **w) for w in second)

    wait_until(logged, EVENT_BOUND, interval=0.5)
    entries = logs(cli, since)
    assert all(find(entries, **w) for w in second), f"after recreation: {entries}"
    assert find(entries, **first), "the old drop still names cache at the old address"
    remove_container(lab, "cache")
    remove_container(lab, "other")


def probe_one(prober: Prober, name: str) -> bool:
    return prober.run(prober.container_netns(name), [Probe(INET_V4, 80, "tcp")])[0]


def ingress_counts(cli: LabCli, backend: str) -> tuple[int, int]:
    """(dropped, logged) on ingress, summed over every chain, from the kernel."""
    report = json.loads(cli.run("status", "--json", "--backend", backend).stdout)
    counters = [RuleCounter(**c) for c in report["counters"]]
    totals = [c for c in chain_totals(counters) if c.direction == "ingress"]
    return sum(c.dropped_packets for c in totals), sum(c.logged for c in totals)


def check_flood(lab: Lab, cli: LabCli, backend: str, count: int = 10_000) -> None:
    """Records stay within the rate; the rest is reported as suppressed, exactly."""
    dropped_before, _ = ingress_counts(cli, backend)
    since = time.time()
    flood = SubprocessRunner(netns=netns_path(lab.names.inet_ns)).run(
        [sys.executable, FLOOD, OTHER_V4, t.HOST_UPLINK_V4, "5432", str(count)], timeout=120
    )
    took = float(flood.stdout.strip())
    ended = time.time()
    dropped, logged = ingress_counts(cli, backend)
    assert dropped - dropped_before >= count, "every SYN of the flood is counted as dropped"

    def suppressed_total() -> int:
        found = logs(cli, 0)
        return sum(e["count"] for e in found if e.get("kind") == "suppressed"
                   and e.get("direction") == "ingress")  # fmt: skip

    reported = None
    for _ in range(60):
        reported = suppressed_total()
        if reported == dropped - logged:
            break
        time.sleep(0.5)
    assert reported == dropped - logged, (
        f"suppressed reported {reported}, kernel: {dropped} dropped, {logged} logged"
    )
    records = [
        e for e in logs(cli, since) if e.get("kind") == "drop" and e.get("direction") == "ingress"
    ]
    allowed = 50 + 20 * (ended - since + 1)
    assert len(records) <= allowed, f"{len(records)} records in {ended - since:.1f} s"
    assert not [e for e in logs(cli, since) if e.get("kind") == "lost"], "no record lost"
    print(f"flood of {count} SYNs in {took} s: {len(records)} records, {reported} suppressed")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_drops_are_named_in_the_log(cli: LabCli, agents: Agents, backend: str) -> None:
    agent = agents.start(cli.policy(POLICY), backend=backend)
    agent.wait_ready()
    check_matrix(cli.lab, cli)
    check_recreated(cli.lab, cli)
    check_flood(cli.lab, cli, backend)
    assert agent.alive(), agent.log()
