"""The iptables backend against real packets in a lab of its own: isolated peers, and
long allowlists held in ipset sets.

Rulesets are built by hand from the lab's real containers, loaded through
IptablesBackend inside the lab's Docker host, and checked with probes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from dockwall.backends.iptables import IptablesBackend
from dockwall.compile.ir import Allow, Filter, PortMatch, Ruleset
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from dockwall.model.state import Network
from tests.conftest import lab_name, own_lab
from tests.lab.test_nft_lab import bridge_netfilter, guard, isolated, peers_reachable, ruleset

pytestmark = pytest.mark.lab

ENTRIES = 1000


@pytest.fixture(scope="module")
def ipt_lab() -> Iterator[Lab]:
    with own_lab(lab_name("p")) as lab:
        yield lab


@pytest.fixture
def backend(ipt_lab: Lab) -> Iterator[IptablesBackend]:
    """Every test starts and ends without our chains and sets."""
    backend = IptablesBackend(ipt_lab.host)
    backend.apply(backend.plan_reset())
    try:
        yield backend
    finally:
        backend.apply(backend.plan_reset())


@pytest.fixture
def prober(ipt_lab: Lab) -> Prober:
    return Prober(ipt_lab)


def load(backend: IptablesBackend, rules: Ruleset) -> None:
    backend.apply(backend.plan(rules))
    assert backend.plan(rules).in_sync, "the live read-back must equal what was loaded"


def our_sets(lab: Lab) -> list[str]:
    names = lab.host.run(["ipset", "list", "-n"]).stdout.split()
    return [n for n in names if n.startswith("dockwall-")]


def test_isolated_peers_need_a_peer_allow(
    ipt_lab: Lab, backend: IptablesBackend, prober: Prober
) -> None:
    assert bridge_netfilter(ipt_lab) == ("1", "1"), "same-bridge traffic must reach netfilter"
    load(backend, ruleset(ipt_lab))
    assert peers_reachable(prober) == (True, True), "not isolated: as before, peers talk"
    load(backend, isolated(ipt_lab, allow_worker_to_db=False))
    assert peers_reachable(prober) == (False, False)
    load(backend, isolated(ipt_lab, allow_worker_to_db=True))
    assert peers_reachable(prober) == (True, True)
    assert not prober.probe("container:db", "container:worker:5432/tcp"), "one way only"


def allowlist(family: int, allowed: str, shift: int = 0) -> tuple[Network, ...]:
    """ENTRIES networks, the allowed source's one last (the worst place for a chain)."""
    if family == 4:
        base = int(ipaddress.IPv4Address("198.18.0.0"))
        filler: list[Network] = [
            ipaddress.ip_network(f"{ipaddress.IPv4Address(base + 2 * (i + shift))}/32")
            for i in range(ENTRIES - 1)
        ]
    else:
        filler = [
            ipaddress.ip_network(f"2001:db8:f00:{i + shift:x}::/64") for i in range(ENTRIES - 1)
        ]
    return (*filler, ipaddress.ip_network(allowed))


CASES = {
    "ipv4": (4, "192.0.2.100/32", "192.0.2.100", "192.0.2.7"),
    "ipv6": (6, "2001:db8:100::/64", "2001:db8:100::100", "2001:db8:200::7"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_long_allowlist_is_one_ipset_match(
    ipt_lab: Lab, backend: IptablesBackend, prober: Prober, case: str
) -> None:
    family, allowed, source, other = CASES[case]

    def rules(shift: int) -> Ruleset:
        peers = allowlist(family, allowed, shift)
        ingress = Filter(
            (Allow(peers=peers, ports=(PortMatch("tcp", 5432, 5432),), original=True),)
        )
        return ruleset(ipt_lab, guard(ipt_lab, "db", ingress, None))

    load(backend, rules(0))
    [first] = our_sets(ipt_lab)
    save = "iptables-save" if family == 4 else "ip6tables-save"
    text = ipt_lab.host.run([save, "-t", "filter"]).stdout
    assert f"-m set --match-set {first} src" in text
    assert text.count("--ctorigdstport 5432") == 1, "one rule, not one per address"
    assert prober.probe(source, "host:5432/tcp")
    assert not prober.probe(other, "host:5432/tcp")

    load(backend, rules(1))
    [second] = our_sets(ipt_lab)
    assert second != first, "a changed list is a new set; the old one is gone"
    assert prober.probe(source, "host:5432/tcp")
    assert not prober.probe(other, "host:5432/tcp")

    backend.apply(backend.plan_reset())
    assert our_sets(ipt_lab) == []
    assert backend.plan_reset().in_sync
    assert prober.probe(other, "host:5432/tcp")
