"""explain must agree with real packets, every time, on a real Docker host.

For each scenario (Docker's own rules, the article's INPUT rules, a DOCKER-USER drop,
a ufw-like chain, a dockwall-like policy, REJECT rules in iptables and in nftables,
and policies applied by `dockwall apply` itself with the iptables and the nftables
backend, one of them with allowlists long enough to become ipset sets) random
connections are both simulated and sent for real, and explain's `connection` must
say how each one really ended: open, refused (a reset or a port unreachable came
back at once: nothing listens, or a REJECT answered), another ICMP error, or nothing
before the timeout (dropped). `unknown` counts as disagreement. Probes go to ports
that listen and to ports nothing listens on: on the host, behind a published port
whose container runs no listener, on a loopback-only and a dual-stack listener. The
only destinations beyond the host are the lab internet's listening ports, as explain
cannot see another host's sockets.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from dockwall.explain.connection import Connection, connection
from dockwall.explain.endpoints import start
from dockwall.explain.live import gather
from dockwall.explain.simulate import Explanation, explain_connection
from dockwall.explain.sockets import Listener, read_listeners
from dockwall.lab import netns
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Probe, Prober
from dockwall.lab.prober import Outcome
from dockwall.runner import SubprocessRunner
from tests.conftest import lab_name, own_lab

from .dockwall_cli import Dockwall
from .explain_scenarios import (
    AIMED_AT,
    CONTAINERS,
    DUAL_STACK,
    INBOUND,
    LOOPBACK_ONLY,
    NFT_SCENARIOS,
    POLICIES,
    QUIET_PORTS,
    SCENARIOS,
)

pytestmark = pytest.mark.lab

PROBES_PER_SCENARIO = 48
PROBES_PER_POLICY = 40
BACKENDS = ("iptables", "nftables")
PROBE_TIMEOUT = 2.0
# The kernel rate-limits the ICMP errors it sends to one address (a burst of 6, then
# one a second); a batch sends more than that, and a port unreachable held back by the
# limit would look like a silent drop. The lab's namespaces send them all.
NO_ICMP_LIMIT = ("net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")


@dataclass(frozen=True)
class Case:
    source: str
    destination: str
    family: int


@pytest.fixture(scope="module")
def elab() -> Iterator[Lab]:
    with own_lab(lab_name("e")) as lab:
        add_closed_ports(lab)
        yield lab


def add_closed_ports(lab: Lab) -> None:
    """A container that publishes ports but runs no listener, a host listener bound to
    127.0.0.1 and one on [::] that takes IPv4 too; no ICMP rate limit anywhere."""
    attrs = lab.run_container("quiet", QUIET_PORTS, listen=False)
    host = netns.in_ns(lab.names.host_ns)
    host.spawn(
        netns.listener_argv(lab.names.name, ("127.0.0.1",), (LOOPBACK_ONLY,), ()),
        log_path=str(lab.names.state_dir / "loopback-listener.log"),
    )
    host.spawn(
        netns.listener_argv(lab.names.name, ("::",), (DUAL_STACK,), (DUAL_STACK,), dual_stack=True),
        log_path=str(lab.names.state_dir / "dual-stack-listener.log"),
    )
    host.run(["sysctl", "-q", "-w", *NO_ICMP_LIMIT])
    prober = Prober(lab)
    for name in (*CONTAINERS, "quiet"):
        ns = prober.container_netns(name)
        SubprocessRunner(netns=ns).run(["sysctl", "-q", "-w", *NO_ICMP_LIMIT])
    assert attrs["State"]["Running"]
    wait_for_listeners(lab, {LOOPBACK_ONLY, DUAL_STACK})


def wait_for_listeners(lab: Lab, ports: set[int], bound: float = 60.0) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if ports <= {sock.port for sock in read_listeners(lab.host)}:
            return
        time.sleep(0.2)
    pytest.fail(f"the host listeners on {sorted(ports)} did not start within {bound:g}s")


def random_cases(rng: random.Random, count: int) -> list[Case]:
    cases: list[Case] = []
    while len(cases) < count:
        family = rng.choice((4, 6))
        if rng.random() < 0.5:
            source = rng.choice(t.INTERNET_V4 if family == 4 else t.INTERNET_V6)
            port, proto = rng.choice(INBOUND)
            cases.append(Case(source, f"host:{port}/{proto}", family))
            continue
        source = rng.choice(CONTAINERS)
        cases.append(Case(f"container:{source}", egress_destination(rng, family), family))
    return cases


def egress_destination(rng: random.Random, family: int) -> str:
    roll = rng.random()
    host = t.HOST_UPLINK_V4 if family == 4 else f"[{t.HOST_UPLINK_V6}]"
    if roll < 0.1:
        return "container:db:5432/tcp"
    if roll < 0.25:
        # TCP only: the host's UDP listener is bound to the wildcard address and answers
        # from the bridge's address, which the client's connected socket ignores.
        return f"{host}:{t.HOST_SERVICE_PORT}/tcp"
    if roll < 0.4:
        # to the host's own published port (docker-proxy for web, DNAT for the others),
        # and to ports nothing listens on: a reset, a port unreachable
        return f"{host}:{rng.choice(('8080/tcp', '7070/tcp', '7071/udp'))}"
    address = rng.choice(t.INTERNET_V4 if family == 4 else t.INTERNET_V6)
    port = rng.choice(t.INTERNET_PORTS)
    proto = rng.choice(("tcp", "udp"))
    target = address if family == 4 else f"[{address}]"
    return f"{target}:{port}/{proto}"


def real_outcomes(prober: Prober, cases: list[Case]) -> list[Outcome]:
    """Groups the cases by source namespace so each namespace gets one concurrent batch."""
    batches: dict[str, list[tuple[int, Probe]]] = {}
    for index, case in enumerate(cases):
        ns, src = prober.source(case.source)
        target = prober.destination(case.destination, case.family)
        batches.setdefault(ns, []).append(
            (index, Probe(target.dst, target.port, target.proto, src))
        )
    results: list[Outcome] = ["timeout"] * len(cases)
    for ns, items in batches.items():
        answers = prober.outcomes(ns, [p for _, p in items])
        for (index, _), outcome in zip(items, answers, strict=True):
            results[index] = outcome
    return results


def expected_outcome(conn: Connection, result: Explanation) -> Outcome | None:
    """What a client sees for each answer; None for `unknown`, which never agrees."""
    if conn.result == "rejected":
        answer = result.reject or ""
        if "reset" in answer or "port-unreach" in answer:
            return "refused"
        return "timeout" if "UDP socket ignores" in conn.reason else "unreachable"
    outcomes: dict[str, Outcome] = {"open": "open", "refused": "refused", "dropped": "timeout"}
    return outcomes.get(conn.result)


def apply_scenario(lab: Lab, baseline: tuple[str, str], rules: tuple[str, str]) -> None:
    lab.host.run(["nft", "delete", "table", "inet", "dwreject"], check=False)
    lab.host.run(["iptables-restore"], input=baseline[0])
    lab.host.run(["ip6tables-restore"], input=baseline[1])
    lab.host.run(["conntrack", "-F"], check=False)
    if rules[0]:
        lab.host.run(["iptables-restore", "--noflush"], input=rules[0])
    if rules[1]:
        lab.host.run(["ip6tables-restore", "--noflush"], input=rules[1])


@dataclass
class Tally:
    total: int = 0
    disagreements: list[str] = field(default_factory=list)
    scenarios: dict[str, tuple[int, int]] = field(default_factory=dict)
    set_matches: dict[str, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)
    real: dict[str, int] = field(default_factory=dict)
    headlines: list[str] = field(default_factory=list)

    def check(self, elab: Lab, prober: Prober, rng: random.Random, name: str, count: int) -> None:
        """`count` random connections, simulated against the live host and sent for real."""
        state = gather(elab.host, lambda: docker.DockerClient(base_url=elab.names.docker_host))
        tables: dict[str | None, tuple[Listener, ...]] = {}

        def read(ns: str | None) -> tuple[Listener, ...]:
            if ns not in tables:
                tables[ns] = read_listeners(elab.host, ns)
            return tables[ns]

        cases = random_cases(rng, count) + [Case(*aimed) for aimed in AIMED_AT.get(name, ())]
        real = real_outcomes(prober, cases)
        self.scenarios[name] = (real.count("open"), len(real))
        for case, outcome in zip(cases, real, strict=True):
            begin = start(state, case.source, case.destination, case.family)
            result = explain_connection(state, begin.packet, begin.local_origin)
            conn = connection(result, state, read)
            self.total += 1
            self.answers[conn.result] = self.answers.get(conn.result, 0) + 1
            self.real[outcome] = self.real.get(outcome, 0) + 1
            self.headlines.append(conn.headline())
            if any("--match-set" in (step.rule or "") for step in result.path):
                self.set_matches[name] = self.set_matches.get(name, 0) + 1
            if expected_outcome(conn, result) != outcome:
                self.disagreements.append(
                    f"{name}: {case.source} -> {case.destination} (IPv{case.family}): "
                    f"real {outcome}, explain {conn.headline()} (verdict {result.verdict})"
                )


def assert_uses_ipsets(lab: Lab) -> None:
    """The long allowlists must really be ipset matches, or this test checks nothing new."""
    for tool in ("iptables-save", "ip6tables-save"):
        rules = lab.host.run([tool]).stdout
        assert rules.count("-m set --match-set dockwall-") >= 6, f"{tool}: no ipset matches"
    assert lab.host.run(["ipset", "list", "-n"]).stdout.count("dockwall-") >= 2


# ~800 probes and 17 rulesets: 4-5 minutes alone, more on a busy machine, so a
# generous bound instead of the suite's 300 s
@pytest.mark.timeout(1500)
def test_explain_agrees_with_real_traffic(elab: Lab, tmp_path: Path) -> None:
    prober = Prober(elab, timeout=PROBE_TIMEOUT)
    baseline = (
        elab.host.run(["iptables-save"]).stdout,
        elab.host.run(["ip6tables-save"]).stdout,
    )
    rng = random.Random(20240606)
    tally = Tally()
    try:
        for name, rules in SCENARIOS.items():
            apply_scenario(elab, baseline, rules)
            tally.check(elab, prober, rng, name, PROBES_PER_SCENARIO)
        for name, ruleset in NFT_SCENARIOS.items():
            apply_scenario(elab, baseline, ("", ""))
            elab.host.run(["nft", "-f", "-"], input=ruleset)
            tally.check(elab, prober, rng, name, PROBES_PER_SCENARIO)
        for backend in BACKENDS:
            dockwall = Dockwall(elab, tmp_path, backend)
            for name, policy in POLICIES.items():
                apply_scenario(elab, baseline, ("", ""))
                dockwall.apply(policy)
                if backend == "iptables" and name == "ipset-allowlists":
                    assert_uses_ipsets(elab)
                elab.host.run(["conntrack", "-F"], check=False)
                tally.check(elab, prober, rng, f"dockwall {backend} {name}", PROBES_PER_POLICY)
            dockwall.run("reset", "--backend", backend, check=False)
    finally:
        elab.host.run(["nft", "delete", "table", "inet", "dockwall"], check=False)
        apply_scenario(elab, baseline, ("", ""))
    print("\n".join(f"{name}: {o} of {n} open" for name, (o, n) in tally.scenarios.items()))
    print(f"explain said {tally.answers}; real traffic {tally.real}; {tally.total} probes")
    assert tally.total >= 500
    for name, (scenario_open, scenario_total) in tally.scenarios.items():
        if name.startswith("dockwall"):
            assert 0 < scenario_open < scenario_total, f"{name}: all probes alike"
    # explain really looked packets up in the sets: some matched an ipset rule
    assert tally.set_matches.get("dockwall iptables ipset-allowlists", 0) >= 5, tally.set_matches
    # every kind of ending happened often enough to be tested, not once by luck
    for outcome in ("open", "refused", "unreachable", "timeout"):
        assert tally.real.get(outcome, 0) >= (3 if outcome == "unreachable" else 40), tally.real
    for answer in ("refused", "rejected"):
        assert tally.answers.get(answer, 0) >= 20, tally.answers
    # and the listener cases the lab sets up were all reached
    for words in ("relays to web:80/tcp", "in container quiet", "(IPv4 too)", "nothing listens"):
        assert any(words in line for line in tally.headlines), f"no probe said {words!r}"
    assert not tally.disagreements, "\n".join(tally.disagreements)


def test_explain_cli_answers_does_it_connect(elab: Lab, tmp_path: Path) -> None:
    """The issue's example, through the real command: the first line says it in words."""
    dockwall = Dockwall(elab, tmp_path)
    closed = dockwall.run("explain", "--from", "198.51.100.7", "--to", "host:7070/tcp")
    assert closed.stdout.splitlines()[0] == (
        f"refused: the firewall lets it through, but nothing listens on {t.HOST_UPLINK_V4}:7070/tcp"
    )
    data = json.loads(
        dockwall.run("explain", "--from", "198.51.100.7", "--to", "host:7070/tcp", "--json").stdout
    )
    assert (data["connection"], data["verdict"]) == ("refused", "accept")
    published = dockwall.run(
        "explain", "--from", "198.51.100.7", "--to", "host:8080/tcp", "--json"
    ).stdout
    detail = json.loads(published)["connection_detail"]
    assert detail["reason"].endswith("listens in container web"), detail
    assert Prober(elab, timeout=PROBE_TIMEOUT).outcomes(
        *prober_target(elab, "198.51.100.7", "host:7070/tcp")
    ) == ["refused"]


def prober_target(lab: Lab, source: str, destination: str) -> tuple[str, list[Probe]]:
    prober = Prober(lab)
    ns, src = prober.source(source)
    target = prober.destination(destination, 4)
    return ns, [Probe(target.dst, target.port, target.proto, src)]
