"""Random policies from the whole policy language, for containers a lab really runs.

Used by the lab's convergence property test and the agent's quiet-host test. Entries
are drawn per group of containers (each group has its own matchers), so no container
is ever matched by two entries: every drawn policy compiles.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml
from hypothesis import strategies as st

from dockwall.policy.fields import MAPPED

# The lab's sample containers plus the ones the property test starts (EXTRA below).
GROUPS: tuple[tuple[dict[str, Any], ...], ...] = (
    ({"name": "web"},),
    ({"name": "db"},),
    ({"name": "worker"}, {"compose": {"project": "shop", "service": "worker"}}),
    ({"compose": {"project": "shop", "service": "api"}}, {"label": "tier=api"}),
    ({"name": "lbla"},),
    ({"name": "lblb"}, {"label": "tier=cache"}),
)
CONTAINER_NAMES = ("web", "db", "worker", "shop-api-1", "shop-api-2", "lbla", "lblb")


def api_labels(replica: int) -> dict[str, str]:
    return {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "api",
        "com.docker.compose.container-number": str(replica),
        "tier": "api",
    }


# name -> (network, published ports, labels)
EXTRA: dict[str, tuple[str, dict[str, int], dict[str, str]]] = {
    "shop-api-1": ("shop", {"80/tcp": 9101}, api_labels(1)),
    "shop-api-2": ("shop", {"80/tcp": 9102}, api_labels(2)),
    "lbla": (
        "bridge",
        {"80/tcp": 9103, "53/udp": 9153},
        {
            "dockwall.ingress": '[{ports: [9103/tcp, 9100-9105/tcp, 9153/udp], from: [0.0.0.0/0, "::/0"]}]',
            "dockwall.egress": '[{to: [203.0.113.0/24, 203.0.113.10, "2001:db8::/32"], ports: [443/tcp, icmp]}]',
        },
    ),
    "lblb": (
        "shop",
        {"80/tcp": 9104},
        {
            "tier": "cache",
            "dockwall.ingress": '[{container_ports: [80/tcp], from: [192.0.2.0/24, "2001:db8:100::/48"]}]',
            "dockwall.egress": "deny",
        },
    ),
}

PORT_NUMBERS = st.sampled_from([53, 80, 81, 443, 5432, 8053, 8080, 8081, 8089, 9101, 9103])


@st.composite
def networks(draw: st.DrawFn) -> str:
    """Every prefix length of both families, weighted towards /0, host routes and the
    lab's own ranges (so merges and coverings happen often)."""
    if draw(st.booleans()):
        base: Any = draw(
            st.sampled_from(["192.0.2.100", "198.51.100.7", "203.0.113.10", "172.30.0.2"])
            | st.ip_addresses(v=4)
        )
        length = draw(st.sampled_from([0, 8, 16, 24, 25, 32]) | st.integers(0, 32))
    else:
        base = draw(
            st.sampled_from(["2001:db8:100::100", "2001:db8:200::7", "2001:db8:d0c:1::2"])
            | st.ip_addresses(v=6)
        )
        length = draw(st.sampled_from([0, 32, 48, 64, 127, 128]) | st.integers(0, 128))
    network = ipaddress.ip_network(f"{base}/{length}", strict=False)
    if network.version == 6 and network.subnet_of(MAPPED):
        network = ipaddress.ip_network("2001:db8::/32")
    if network.prefixlen == network.max_prefixlen and draw(st.booleans()):
        return str(network.network_address)
    return str(network)


# Long lists of one family: ipset sets (iptables) and named interval sets (nftables).
many_hosts = st.lists(
    st.integers(1, 254).map(lambda n: f"192.0.2.{n}")
    | st.integers(1, 0xFFFF).map(lambda n: f"2001:db8:100::{n:x}"),
    min_size=9,
    max_size=24,
)
address_lists = st.just(["any"]) | st.lists(networks(), min_size=1, max_size=12) | many_hosts


@st.composite
def port_spec(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["tcp", "tcp", "udp", "icmp", "range"]))
    if kind == "icmp":
        return "icmp"
    first = draw(PORT_NUMBERS)
    if kind == "range":
        last = first + draw(st.integers(0, 12))
        return f"{first}-{min(last, 65535)}/{draw(st.sampled_from(['tcp', 'udp']))}"
    return f"{first}/{kind}"


port_lists = st.lists(port_spec(), min_size=1, max_size=5)
container_refs = st.lists(st.sampled_from(CONTAINER_NAMES), min_size=1, max_size=3, unique=True)


@st.composite
def ingress_rule(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule["ports"] = draw(port_lists)
    if draw(st.booleans()):
        rule["container_ports"] = draw(port_lists)
    if draw(st.integers(0, 3)) == 0:
        rule["from_containers"] = draw(container_refs)
        if draw(st.booleans()):
            rule["from"] = draw(address_lists)
    elif draw(st.integers(0, 4)):
        rule["from"] = draw(address_lists)
    return rule


@st.composite
def egress_rule(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule["ports"] = draw(port_lists)
    if draw(st.integers(0, 3)) == 0:
        rule["to_containers"] = draw(container_refs)
        if draw(st.booleans()):
            rule["to"] = draw(address_lists)
    elif draw(st.integers(0, 4)):
        rule["to"] = draw(address_lists)
    return rule


def direction(rules: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    return st.sampled_from(["allow", "deny"]) | st.lists(rules, min_size=0, max_size=4)


@st.composite
def entry(draw: st.DrawFn, group: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    found = dict(draw(st.sampled_from(group)))
    if draw(st.booleans()):
        found["ingress"] = draw(direction(ingress_rule()))
    if draw(st.booleans()):
        found["egress"] = draw(direction(egress_rule()))
    return found


@st.composite
def policy_documents(draw: st.DrawFn) -> dict[str, Any]:
    verdicts = st.sampled_from(["allow", "deny"])
    document: dict[str, Any] = {
        "version": 1,
        "defaults": {"ingress": draw(verdicts), "egress": draw(verdicts), "peers": draw(verdicts)},
    }
    labels: dict[str, Any] = {"trust": draw(st.booleans())}
    if draw(st.booleans()):
        labels["ingress_from"] = draw(address_lists)
    if draw(st.booleans()):
        labels["egress_to"] = draw(address_lists)
    document["labels"] = labels
    entries = [draw(entry(group)) for group in GROUPS if draw(st.booleans())]
    if entries:
        document["containers"] = entries
    return document


class Written(yaml.SafeDumper):
    """Every value written out: a policy file has no YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def policy_texts() -> st.SearchStrategy[str]:
    return policy_documents().map(lambda d: yaml.dump(d, Dumper=Written, sort_keys=False))
