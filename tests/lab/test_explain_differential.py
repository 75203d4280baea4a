"""explain must agree with real packets, every time, on a real Docker host.

For each scenario (Docker's own rules, the article's INPUT rules, a DOCKER-USER drop,
a ufw-like chain, a dockwall-like policy, and policies applied by `dockwall apply`
itself with the iptables and the nftables backend, one of them with allowlists long
enough to become ipset sets) random connections are both simulated and sent for real;
`unknown` counts as disagreement. Only endpoints with a listener are probed, so
"closed" can only mean the firewall.
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from dockwall.explain.endpoints import start
from dockwall.explain.live import gather
from dockwall.explain.simulate import explain_connection
from dockwall.explain.state import HostState
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Probe, Prober

from .dockwall_cli import Dockwall

pytestmark = pytest.mark.lab

PROBES_PER_SCENARIO = 40
PROBES_PER_POLICY = 32
INBOUND = (("8080", "tcp"), ("8053", "udp"), ("5432", "tcp"), (str(t.HOST_SERVICE_PORT), "tcp"))
CONTAINERS = ("web", "db", "worker")

ARTICLE_INPUT = """*filter
-A INPUT -s 192.0.2.100/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 8080 -j DROP
-A INPUT -i docker0 -p tcp -m tcp --dport 2222 -j DROP
COMMIT
"""
ARTICLE_INPUT6 = """*filter
-A INPUT -s 2001:db8:100::100/128 -p tcp -m tcp --dport 2222 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 2222 -j DROP
COMMIT
"""
DOCKER_USER_DROP = """*filter
-I DOCKER-USER -d 0.0.0.0/0 -j DROP
COMMIT
"""
UFW_LIKE = """*filter
:ufw-user-forward - [0:0]
-I DOCKER-USER -j ufw-user-forward
-A ufw-user-forward -s 192.0.2.100/32 -p tcp -m tcp --dport 80 -j RETURN
-A ufw-user-forward -i br-+ -j RETURN
-A ufw-user-forward -p udp -m udp --dport 53 -j RETURN
-A ufw-user-forward -i uplink -j DROP
COMMIT
"""
ORIG_8080 = "-m conntrack --ctorigdstport 8080 --ctdir ORIGINAL"
DOCKWALL_LIKE = f"""*filter
:DOCKWALL-INGRESS - [0:0]
:DOCKWALL-EGRESS - [0:0]
-I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A DOCKER-USER -i uplink -m comment --comment dockwall -g DOCKWALL-INGRESS
-A DOCKER-USER ! -i uplink -o uplink -m comment --comment dockwall -j DOCKWALL-EGRESS
-A DOCKWALL-INGRESS -s 192.0.2.0/24 -p tcp {ORIG_8080} -j RETURN
-A DOCKWALL-INGRESS -p udp -m conntrack --ctorigdstport 8000:8100 --ctdir ORIGINAL -j RETURN
-A DOCKWALL-INGRESS -m comment --comment dockwall -j DROP
-A DOCKWALL-EGRESS -d 203.0.113.0/24 -p tcp -m tcp --dport 400:500 -j RETURN
-A DOCKWALL-EGRESS -p udp -m udp --dport 53 -j RETURN
-A DOCKWALL-EGRESS -j DROP
COMMIT
"""
DOCKWALL_LIKE6 = f"""*filter
:DOCKER-USER - [0:0]
:DOCKWALL-INGRESS - [0:0]
-I FORWARD -j DOCKER-USER
-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A DOCKER-USER -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j RETURN
-A DOCKER-USER -i uplink -j DOCKWALL-INGRESS
-A DOCKER-USER ! -i uplink -o uplink -p tcp -m tcp --dport 80 -j DROP
-A DOCKWALL-INGRESS -s 2001:db8:200::/48 -p tcp {ORIG_8080} -j RETURN
-A DOCKWALL-INGRESS -j DROP
COMMIT
"""
SCENARIOS = {
    "docker": ("", ""),
    "article-input": (ARTICLE_INPUT, ARTICLE_INPUT6),
    "docker-user-drop": (DOCKER_USER_DROP, ""),
    "ufw-like": (UFW_LIKE, ""),
    "dockwall-like": (DOCKWALL_LIKE, DOCKWALL_LIKE6),
}

INGRESS_ALLOWLIST = """\
version: 1
containers:
  - name: web
    ingress:
      - port: 8080/tcp
        from: [192.0.2.0/24, "2001:db8:100::/48"]
  - name: db
    ingress:
      - {port: 5432/tcp, from: [203.0.113.10, "2001:db8:203::10"]}
"""
DEFAULT_DENY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress:
      - {port: 8053/udp, from: [any]}
"""
EGRESS_ALLOWLIST = """\
version: 1
containers:
  - compose: {project: shop, service: worker}
    egress:
      - {to: [203.0.113.0/24, "2001:db8:203::/48"], port: 443/tcp}
      - {to: [203.0.113.20/32, "2001:db8:203::20"], port: 53/udp}
  - name: web
    egress:
      - {to: [192.0.2.0/24, "2001:db8:100::/48"], port: 80/tcp}
"""
EGRESS_DENY = """\
version: 1
defaults: {egress: deny}
containers:
  - name: db
    egress:
      - {to: [198.51.100.0/24, "2001:db8:ffff::/64"], port: 2222/tcp}
"""
# Long allowlists: more than ipsets.THRESHOLD networks of each family, so the iptables
# backend matches them with `-m set --match-set`. They hold some of the lab's internet
# addresses (192.0.2.100, .7, 203.0.113.10, 2001:db8:100::100, 2001:db8:203::10) and
# leave out the others, some by a near miss (198.51.100.128/25, 2001:db8:200:8000::/49).
SET_V4 = (
    "192.0.2.0/25", "203.0.113.10", "10.0.0.0/8", "100.64.0.0/10", "198.18.0.0/15",
    "203.0.113.64/26", "198.51.100.128/25", "192.168.100.0/24", "233.252.0.0/24",
    "11.0.0.0/8", "1.1.1.1", "8.8.8.0/24",
)  # fmt: skip
SET_V6 = (
    "2001:db8:100::/48", "2001:db8:203::10", "fd00::/8", "2001:db8:aaaa::/48",
    "2001:db8:bbbb::/48", "2001:db8:cccc::/64", "2001:db8:200:8000::/49", "2001:db8:dddd::1",
    "2001:db8:eeee::/56", "2001:db8:1234::/48", "2002::/16", "64:ff9b::/96",
)  # fmt: skip
SET_LIST = ", ".join(f'"{cidr}"' for cidr in SET_V4 + SET_V6)
IPSET_ALLOWLISTS = f"""\
version: 1
containers:
  - name: web
    ingress:
      - {{port: 8080/tcp, from: [{SET_LIST}]}}
    egress:
      - {{to: [{SET_LIST}]}}
  - name: db
    ingress:
      - {{port: 5432/tcp, from: [{SET_LIST}]}}
  - compose: {{project: shop, service: worker}}
    egress:
      - {{to: [{SET_LIST}], ports: [443/tcp, 53/udp, 80/tcp]}}
"""
POLICIES = {
    "ingress-allowlist": INGRESS_ALLOWLIST,
    "default-deny-ingress": DEFAULT_DENY,
    "egress-allowlist": EGRESS_ALLOWLIST,
    "egress-deny": EGRESS_DENY,
    "ipset-allowlists": IPSET_ALLOWLISTS,
}
BACKENDS = ("iptables", "nftables")


@dataclass(frozen=True)
class Case:
    source: str
    destination: str
    family: int


@pytest.fixture(scope="module")
def elab() -> Iterator[Lab]:
    lab = Lab(os.environ.get("DOCKWALL_EXPLAIN_LAB_PREFIX", "e") + secrets.token_hex(3))
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def random_cases(rng: random.Random, state: HostState, count: int) -> list[Case]:
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
    if roll < 0.15:
        return "container:db:5432/tcp"
    if roll < 0.3:
        host = t.HOST_UPLINK_V4 if family == 4 else f"[{t.HOST_UPLINK_V6}]"
        # TCP only: the host's UDP listener is bound to the wildcard address and answers
        # from the bridge's address, which the client's connected socket ignores.
        return f"{host}:{t.HOST_SERVICE_PORT}/tcp"
    address = rng.choice(t.INTERNET_V4 if family == 4 else t.INTERNET_V6)
    port = rng.choice(t.INTERNET_PORTS)
    proto = rng.choice(("tcp", "udp"))
    host = address if family == 4 else f"[{address}]"
    return f"{host}:{port}/{proto}"


def real_results(prober: Prober, cases: list[Case]) -> list[bool]:
    """Groups the cases by source namespace so each namespace gets one concurrent batch."""
    batches: dict[str, list[tuple[int, Probe]]] = {}
    for index, case in enumerate(cases):
        ns, src = prober.source(case.source)
        family = case.family
        target = prober.destination(case.destination, family)
        batches.setdefault(ns, []).append(
            (index, Probe(target.dst, target.port, target.proto, src))
        )
    results = [False] * len(cases)
    for ns, items in batches.items():
        for (index, _), ok in zip(items, prober.run(ns, [p for _, p in items]), strict=True):
            results[index] = ok
    return results


def apply_scenario(lab: Lab, baseline: tuple[str, str], rules: tuple[str, str]) -> None:
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
    opened: int = 0

    def __post_init__(self) -> None:
        self.disagreements: list[str] = []
        self.scenarios: dict[str, tuple[int, int]] = {}
        self.set_matches: dict[str, int] = {}

    def check(self, elab: Lab, prober: Prober, rng: random.Random, name: str, count: int) -> None:
        """`count` random connections, simulated against the live host and sent for real."""
        state = gather(elab.host, lambda: docker.DockerClient(base_url=elab.names.docker_host))
        cases = random_cases(rng, state, count)
        real = real_results(prober, cases)
        self.scenarios[name] = (sum(real), len(real))
        for case, is_open in zip(cases, real, strict=True):
            begin = start(state, case.source, case.destination, case.family)
            result = explain_connection(state, begin.packet, begin.local_origin)
            self.total += 1
            self.opened += is_open
            if any("--match-set" in (step.rule or "") for step in result.path):
                self.set_matches[name] = self.set_matches.get(name, 0) + 1
            if result.verdict != ("accept" if is_open else "drop"):
                self.disagreements.append(
                    f"{name}: {case.source} -> {case.destination} (IPv{case.family}): real "
                    f"{'open' if is_open else 'closed'}, explain {result.verdict}"
                    + (f" ({'; '.join(result.unknown)})" if result.unknown else "")
                )


def assert_uses_ipsets(lab: Lab) -> None:
    """The long allowlists must really be ipset matches, or this test checks nothing new."""
    for tool in ("iptables-save", "ip6tables-save"):
        rules = lab.host.run([tool]).stdout
        assert rules.count("-m set --match-set dockwall-") >= 6, f"{tool}: no ipset matches"
    assert lab.host.run(["ipset", "list", "-n"]).stdout.count("dockwall-") >= 2


def test_explain_agrees_with_real_traffic(elab: Lab, tmp_path: Path) -> None:
    prober = Prober(elab, timeout=1.0)
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
    assert tally.total >= 300
    for name, (scenario_open, scenario_total) in tally.scenarios.items():
        if name.startswith("dockwall"):
            assert 0 < scenario_open < scenario_total, f"{name}: all probes alike"
    # explain really looked packets up in the sets: some matched an ipset rule
    assert tally.set_matches.get("dockwall iptables ipset-allowlists", 0) >= 5, tally.set_matches
    opened, total = tally.opened, tally.total
    assert 80 < opened < total - 80, f"{opened} of {total} open: the scenarios test too little"
    assert not tally.disagreements, "\n".join(tally.disagreements)
