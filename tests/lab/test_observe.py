"""The drop log in the lab: refused connections named in `dockwall logs`, both backends.

One lab for the module; each backend gets one agent and one test that checks the whole
matrix (ingress, egress, peers, defaults; IPv4 and IPv6) with real packets, then a
recreated container, then a flood. Waits are bounded (EVENT_BOUND); how fast a drop
reaches the journal is printed (run with -s) and measured in bench/bench_nflog.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

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
    AgentProcess,
    Agents,
    LabCli,
    host_runner,
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


def journal(lab: Lab, since: float) -> list[dict[str, Any]]:
    """The agent's journal read directly (fast, for polling); `logs` is checked too."""
    path = lab.names.state_dir / "dockwall-run" / "drops.jsonl"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    entries = [json.loads(line) for line in lines if line.strip()]
    return [e for e in entries if e.get("ts", 0) >= since]


def suppressed(entries: list[dict[str, Any]]) -> int:
    return sum(e["count"] for e in entries if e.get("kind") == "suppressed"
               and e.get("direction") == "ingress")  # fmt: skip


def check_flood(lab: Lab, cli: LabCli, backend: str, count: int = 10_000) -> None:
    """Records stay within the rate; the rest is reported as suppressed, exactly: what
    the journal reports over the flood equals what the kernel counted beyond the log."""
    dropped_before, logged_before = ingress_counts(cli, backend)
    since = time.time()
    wait_until(lambda: False, 3.0)  # one summary after the baseline, so it predates the flood
    reported_before = suppressed(journal(lab, since))
    flood = SubprocessRunner(netns=netns_path(lab.names.inet_ns)).run(
        [sys.executable, FLOOD, OTHER_V4, t.HOST_UPLINK_V4, "5432", str(count)], timeout=120
    )
    took = float(flood.stdout.strip())
    ended = time.time()
    dropped, logged = ingress_counts(cli, backend)
    assert dropped - dropped_before >= count, "every SYN of the flood is counted as dropped"
    kernel = (dropped - logged) - (dropped_before - logged_before)
    reported = None
    for _ in range(60):
        reported = suppressed(journal(lab, since)) - reported_before
        if reported == kernel:
            break
        time.sleep(0.5)
    assert reported == kernel, f"suppressed reported {reported}, the kernel counted {kernel}"
    shown = logs(cli, since)
    assert suppressed(shown) - reported_before == kernel, "`logs --json` reports it too"
    records = [e for e in shown if e.get("kind") == "drop" and e.get("direction") == "ingress"]
    allowed = 50 + 20 * (ended - since + 1)
    assert len(records) <= allowed, f"{len(records)} records in {ended - since:.1f} s"
    assert not [e for e in shown if e.get("kind") == "lost"], "no record lost"
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


TOKEN = "lab-token-0123456789abcdef"
HOSTILE = {
    "com.docker.compose.project": "<script>window.pwned=1</script>",
    "com.docker.compose.service": "<img src=x onerror=window.pwned=2>",
}
DRIVER = str(Path(__file__).resolve().parent / "page_driver.py")
DOCS = Path(__file__).resolve().parents[2] / "docs"


def start_observed(agents: Agents, cli: LabCli, backend: str, *extra: str) -> AgentProcess:
    """An agent with extra options (a listener), stopped with the others."""
    log = cli.workdir / f"agent-{len(agents.started)}.log"
    agent = AgentProcess(cli, cli.policy(POLICY), log, backend=backend)
    argv = [sys.executable, "-m", "dockwall", "agent", "-f", str(agent.policy)]
    argv += ["--backend", backend, *extra]
    agent.pid = host_runner(cli.lab).spawn(argv, log_path=str(log))
    agents.started.append(agent)
    return agent


def fetch(runner: SubprocessRunner, url: str, token: str | None = None) -> tuple[int, str]:
    """(status, body) of a GET made inside `runner`'s namespace."""
    code = (
        "import sys, urllib.request, urllib.error\n"
        "h = {'Authorization': 'Bearer ' + sys.argv[2]} if sys.argv[2] else {}\n"
        "try:\n"
        "    r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=h), timeout=10)\n"
        "    print(r.status); sys.stdout.write(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    out = runner.run([sys.executable, "-c", code, url, token or ""], timeout=60).stdout
    status, _, body = out.partition("\n")
    return int(status), body


def check_metrics(cli: LabCli, backend: str, runner: SubprocessRunner, url: str,
                  token: str | None = None) -> None:  # fmt: skip
    """/metrics parses with prometheus_client's parser and agrees with `status --json`."""
    status, body = fetch(runner, url, token)
    assert status == 200, body
    families = {f.name: f for f in text_string_to_metric_families(body)}
    report = json.loads(cli.run("status", "--json", "--backend", backend).stdout)
    totals = chain_totals([RuleCounter(**c) for c in report["counters"]])
    for direction in ("ingress", "egress", "peers"):
        scraped = sum(
            s.value
            for s in families["dockwall_dropped_packets"].samples
            if s.name == "dockwall_dropped_packets_total" and s.labels["direction"] == direction
        )
        kernel = sum(c.dropped_packets for c in totals if c.direction == direction)
        assert scraped == kernel, f"{direction}: /metrics {scraped}, status --json {kernel}"
    entries = {s.labels["entry"] for s in families["dockwall_dropped_packets"].samples}
    assert f"policy.yaml:{WEB_LINE}" in entries and "defaults" in entries, entries
    assert families["dockwall_docker_connected"].samples[0].value == 1
    applies = families["dockwall_apply_duration_seconds"].samples
    assert any(x.name.endswith("_count") and x.value >= 1 for x in applies), applies
    assert "dockwall_event_to_enforced_seconds" in families


def check_page(lab: Lab, cli: LabCli) -> None:
    """Headless Chromium shows the containers, a hostile label as text, a live drop."""
    run_container(lab, "evil", labels=HOSTILE)
    ready = cli.workdir / "page-ready"
    shot = cli.workdir / "page.png"
    out = cli.workdir / "driver.log"
    marker = "192.0.2.7"
    argv = [sys.executable, DRIVER, "http://127.0.0.1:9771/", str(ready), str(shot), marker]
    pid = host_runner(lab).spawn(argv, log_path=str(out))
    try:
        assert wait_until(ready.exists, 2 * EVENT_BOUND) is not None, out.read_text()
        prober = Prober(lab, timeout=1.0)
        for _ in range(5):
            prober.run(
                netns_path(lab.names.inet_ns), [Probe(t.HOST_UPLINK_V4, 5432, "tcp", marker)]
            )
            if wait_until(lambda: not Path(f"/proc/{pid}").exists(), 5) is not None:
                break
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 2 * EVENT_BOUND)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        remove_container(lab, "evil")
    lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
    assert lines, out.read_text()
    seen = json.loads(lines[-1])
    assert seen["listed"] and seen["live"], seen
    assert any(row.startswith("web") for row in seen["containers"]), seen
    assert any("<script>window.pwned=1</script>" in row for row in seen["containers"]), seen
    assert seen["scripts"] == 0 and seen["pwned"] is None, "a label's markup must stay text"
    assert seen["graph"] > 0, "the picture loaded"
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(shot, DOCS / "page.png")


@pytest.mark.timeout(300)
def test_metrics_and_page_on_loopback(cli: LabCli, agents: Agents) -> None:
    agent = start_observed(agents, cli, "iptables")
    agent.wait_ready()
    prober = Prober(lab=cli.lab, timeout=1.0)
    probe_all(cli.lab, prober)
    wait_for(cli, 0, [{"direction": "ingress", "container": "web"}])
    check_metrics(cli, "iptables", host_runner(cli.lab), "http://127.0.0.1:9771/metrics")
    check_page(cli.lab, cli)


@pytest.mark.timeout(300)
def test_remote_listener_needs_its_token(cli: LabCli, agents: Agents) -> None:
    token_file = cli.workdir / "token"
    token_file.write_text(TOKEN + "\n")
    listen = f"{t.HOST_UPLINK_V4}:9771"
    refused = cli.run("agent", "-f", str(cli.policy(POLICY)), "--metrics-listen", listen,
                      check=False)  # fmt: skip
    assert refused.returncode == 2 and "--metrics-allow-remote" in refused.stderr, refused
    agent = start_observed(agents, cli, "nftables", "--metrics-listen", listen,
                           "--metrics-allow-remote", "--metrics-token-file", str(token_file))  # fmt: skip
    agent.wait_ready()
    assert "WARNING" in agent.log() and "bearer token" in agent.log(), agent.log()
    inet = SubprocessRunner(netns=netns_path(cli.lab.names.inet_ns))
    url = f"http://{t.HOST_UPLINK_V4}:9771"
    for path in ("/metrics", "/", "/events", "/api/state", "/graph.svg"):
        assert fetch(inet, url + path)[0] == 401, f"{path} without the token"
    assert fetch(inet, url + "/metrics", "wrong-token-0123456789")[0] == 401
    probe_all(cli.lab, Prober(cli.lab, timeout=1.0))
    wait_for(cli, 0, [{"direction": "egress", "container": "web"}])
    check_metrics(cli, "nftables", inet, url + "/metrics", TOKEN)
