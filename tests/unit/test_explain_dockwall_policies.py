"""explain on rulesets written by `dockwall apply` itself, saved from one lab.

Both backends apply the same four policies (see tests/lab/test_explain_differential.py);
the nftables one uses sets, concatenations and verdict maps, which explain must
evaluate rather than call `unknown`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dockwall.explain.addresses import parse_address
from dockwall.explain.endpoints import start
from dockwall.explain.host import LiveContainer, LiveHost, Published
from dockwall.explain.hostnet import HostNet, parse_addresses, parse_routes
from dockwall.explain.iptables.parse import parse_iptables_save
from dockwall.explain.live_ruleset import LiveRuleset
from dockwall.explain.nft.parse import parse_nft_json
from dockwall.explain.simulate import explain_connection

DATA = Path(__file__).parent / "data" / "rulesets" / "dockwall-lab"
IPTABLES_NFT = {("ip", "filter"), ("ip", "nat"), ("ip6", "filter"), ("ip6", "nat")}
POLICIES = ("ingress-allowlist", "default-deny-ingress", "egress-allowlist", "egress-deny")


def container(name: str, v4: str, v6: str, *ports: Published) -> LiveContainer:
    return LiveContainer(name, {4: (parse_address(v4)[1],), 6: (parse_address(v6)[1],)}, ports)


CONTAINERS = [
    container(
        "web",
        "172.17.0.2",
        "2001:db8:d0c::242:ac11:2",
        Published("", 8080, 80, "tcp"),
        Published("", 8053, 53, "udp"),
    ),
    container("db", "172.30.0.2", "2001:db8:d0c:1::2", Published("", 5432, 5432, "tcp")),
    container("worker", "172.30.0.3", "2001:db8:d0c:1::3"),
]


def state(backend: str, policy: str) -> LiveHost:
    def read(name: str) -> str:
        return (DATA / name).read_text()

    if backend == "iptables":
        tables = parse_iptables_save(read(f"iptables-{policy}.txt"), 4, "iptables-nft")
        tables += parse_iptables_save(read(f"ip6tables-{policy}.txt"), 6, "iptables-nft")
    else:
        tables = parse_iptables_save(read("iptables-save.txt"), 4, "iptables-nft", lazy=True)
        tables += parse_iptables_save(read("ip6tables-save.txt"), 6, "iptables-nft", lazy=True)
        tables += parse_nft_json(read(f"nft-{policy}.json"), IPTABLES_NFT)
    routes = parse_routes(read("ip-route4.json"), 4) + parse_routes(read("ip-route6.json"), 6)
    net = HostNet(parse_addresses(read("ip-addr.json")), routes)
    return LiveHost(LiveRuleset(tables), net, list(CONTAINERS))


def verdict(host: LiveHost, source: str, destination: str) -> str:
    begin = start(host, source, destination)
    result = explain_connection(host, begin.packet, begin.local_origin)
    assert result.verdict != "unknown", result.unknown
    return result.verdict


EXPECTED = {
    "ingress-allowlist": [
        ("192.0.2.7", "host:8080/tcp", "accept"),
        ("2001:db8:100::100", "host:8080/tcp", "accept"),
        ("198.51.100.7", "host:8080/tcp", "drop"),
        ("2001:db8:200::7", "host:8080/tcp", "drop"),
        ("203.0.113.10", "host:5432/tcp", "accept"),
        ("2001:db8:203::10", "host:5432/tcp", "accept"),
        ("192.0.2.100", "host:5432/tcp", "drop"),
        ("192.0.2.100", "host:8053/udp", "drop"),
        ("container:worker", "203.0.113.10:443/tcp", "accept"),
    ],
    "default-deny-ingress": [
        ("192.0.2.100", "host:8053/udp", "accept"),
        ("2001:db8:100::100", "host:8053/udp", "accept"),
        ("192.0.2.100", "host:8080/tcp", "drop"),
        ("2001:db8:200::7", "host:5432/tcp", "drop"),
        ("container:web", "[2001:db8:203::10]:443/tcp", "accept"),
    ],
    "egress-allowlist": [
        ("container:worker", "203.0.113.10:443/tcp", "accept"),
        ("container:worker", "[2001:db8:203::10]:443/tcp", "accept"),
        ("container:worker", "203.0.113.10:80/tcp", "drop"),
        ("container:worker", "203.0.113.20:53/udp", "accept"),
        ("container:worker", "203.0.113.10:53/udp", "drop"),
        ("container:web", "192.0.2.100:80/tcp", "accept"),
        ("container:web", "[2001:db8:203::10]:80/tcp", "drop"),
        ("container:db", "198.51.100.7:8443/tcp", "accept"),
        ("192.0.2.100", "host:8080/tcp", "accept"),
    ],
    "egress-deny": [
        ("container:worker", "203.0.113.10:443/tcp", "drop"),
        ("container:worker", "198.51.100.2:2222/tcp", "drop"),
        ("container:web", "[2001:db8:ffff::2]:2222/tcp", "drop"),
        ("container:db", "198.51.100.2:2222/tcp", "accept"),
        ("container:db", "[2001:db8:ffff::2]:2222/tcp", "accept"),
        ("container:db", "198.51.100.7:443/tcp", "drop"),
        ("192.0.2.100", "host:8080/tcp", "accept"),
        ("2001:db8:100::100", "host:5432/tcp", "accept"),
    ],
}


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
@pytest.mark.parametrize("policy", POLICIES)
def test_dockwall_policies(backend: str, policy: str) -> None:
    host = state(backend, policy)
    for source, destination, expected in EXPECTED[policy]:
        assert verdict(host, source, destination) == expected, (source, destination)
