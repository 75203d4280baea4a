"""Rendering the IR into table `inet dockwall`: structure, names and the text plans show."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace

from dockwall.backends.nftables import render
from dockwall.backends.nftables.plan import table_changes
from dockwall.backends.nftables.render import guard_labels, table_objects
from dockwall.backends.nftables.view import table_view
from dockwall.compile.ir import Allow, Endpoint, Filter, Guard, PeerAllow, PortMatch, Ruleset
from dockwall.model.state import Bridge


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


DB = Guard(
    key="c0ffee000001",
    name="db",
    origin="test",
    endpoints=(
        Endpoint("br-0123456789ab", ip("172.30.0.2")),
        Endpoint("br-0123456789ab", ip("2001:db8:d0c:1::2")),
    ),
    ingress=Filter(
        (
            Allow(
                peers=(net("192.0.2.100/32"), net("2001:db8:100::/64")),
                ports=(PortMatch("tcp", 5432, 5432),),
                original=True,
            ),
            Allow(peers=None, ports=(PortMatch("icmp"),)),
        )
    ),
    egress=None,
)
WEB = Guard(
    key="c0ffee000002",
    name="web",
    origin="test",
    endpoints=(Endpoint("docker0", ip("172.17.0.2")),),
    ingress=None,
    egress=Filter(
        (
            Allow(
                peers=(net("203.0.113.0/25"), net("203.0.113.128/25"), net("198.51.100.7/32")),
                ports=(PortMatch("tcp", 443, 443), PortMatch("tcp", 8000, 8100)),
            ),
            Allow(peers=None, ports=(PortMatch("udp", 53, 53),)),
        )
    ),
)
RULESET = Ruleset(
    bridges=(
        Bridge("bridge", "docker0", (net("172.17.0.0/16"),)),
        Bridge("shop", "br-0123456789ab", (net("172.30.0.0/24"),)),
    ),
    guards=(DB, WEB),
    default_ingress=Filter(),
    default_egress=Filter((Allow(peers=None, ports=(PortMatch("udp", 53, 53),)),)),
)

GOLDEN = """\
add table inet dockwall | table inet dockwall
add set bridges | type ifname
add set bridges | br-0123456789ab
add set bridges | docker0
add map egress-v4 | type ipv4_addr . ifname : verdict
add map egress-v4 | 172.17.0.2 . docker0 : goto out-web
add map egress-v4 | 172.30.0.2 . br-0123456789ab : return
add map egress-v6 | type ipv6_addr . ifname : verdict
add map egress-v6 | 2001:db8:d0c:1::2 . br-0123456789ab : return
add map ingress-v4 | type ipv4_addr . ifname : verdict
add map ingress-v4 | 172.17.0.2 . docker0 : return
add map ingress-v4 | 172.30.0.2 . br-0123456789ab : goto in-db
add map ingress-v6 | type ipv6_addr . ifname : verdict
add map ingress-v6 | 2001:db8:d0c:1::2 . br-0123456789ab : goto in-db
add set intra | type ifname . ifname
add set intra | br-0123456789ab . br-0123456789ab
add set intra | docker0 . docker0
add chain default-in | chain default-in
add chain default-in | counter drop
add chain default-out | chain default-out
add chain default-out | udp dport 53 counter return
add chain default-out | counter drop
add chain egress | chain egress
add chain egress | ip saddr . iifname vmap @egress-v4
add chain egress | ip6 saddr . iifname vmap @egress-v6
add chain egress | iifname @bridges goto default-out
add chain egress | iifname "br-*" oifname != "br-*" goto default-out
add chain forward | type filter hook forward priority -1; policy accept
add chain forward | ct state established,related accept
add chain forward | iifname . oifname @intra accept
add chain forward | jump ingress
add chain forward | jump egress
add chain in-db | chain in-db
add chain in-db | ip saddr 192.0.2.100 meta l4proto tcp ct original proto-dst 5432 counter return
add chain in-db | ip6 saddr 2001:db8:100::/64 meta l4proto tcp ct original proto-dst 5432 counter return
add chain in-db | meta l4proto icmp counter return
add chain in-db | meta l4proto ipv6-icmp counter return
add chain in-db | counter drop
add chain ingress | chain ingress
add chain ingress | ip daddr . oifname vmap @ingress-v4
add chain ingress | ip6 daddr . oifname vmap @ingress-v6
add chain ingress | oifname @bridges goto default-in
add chain ingress | oifname "br-*" iifname != "br-*" goto default-in
add chain input | type filter hook input priority -1; policy accept
add chain input | ct state established,related accept
add chain input | icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept
add chain input | jump egress
add chain out-web | chain out-web
add chain out-web | ip daddr { 198.51.100.7, 203.0.113.0/24 } tcp dport 443 counter return
add chain out-web | ip daddr { 198.51.100.7, 203.0.113.0/24 } tcp dport 8000-8100 counter return
add chain out-web | udp dport 53 counter return
add chain out-web | counter drop
add chain owned-by-dockwall | chain owned-by-dockwall
"""


def plan_lines(ruleset: Ruleset) -> list[str]:
    desired = table_view(table_objects(ruleset))
    return [f"{c.op} {c.where} | {c.text}" for c in table_changes(desired, None)]


def test_golden_plan_of_a_fresh_host() -> None:
    assert plan_lines(RULESET) == GOLDEN.splitlines()


def test_replace_is_add_delete_add_in_one_batch_and_never_flushes_the_ruleset() -> None:
    commands = render(RULESET)
    table = {"table": {"family": "inet", "name": "dockwall"}}
    assert commands[:3] == [{"add": table}, {"delete": table}, {"add": table}]
    assert all(set(c) == {"add"} for c in commands[3:])
    assert "flush" not in json.dumps(commands)


def test_base_chains_hook_forward_and_input_just_before_docker() -> None:
    chains = [c["add"]["chain"] for c in render(RULESET) if "chain" in c.get("add", {})]
    hooked = {c["name"]: (c["hook"], c["prio"], c["policy"]) for c in chains if "hook" in c}
    assert hooked == {"forward": ("forward", -1, "accept"), "input": ("input", -1, "accept")}


def test_chains_are_declared_before_the_maps_that_jump_to_them() -> None:
    kinds = [next(iter(c["add"])) for c in render(RULESET)[3:]]
    assert kinds.index("map") > max(i for i, k in enumerate(kinds) if k == "chain")
    assert kinds.index("rule") > max(i for i, k in enumerate(kinds) if k in ("set", "map"))


def test_no_defaults_means_no_fallback_to_default_chains() -> None:
    ruleset = Ruleset(RULESET.bridges, (DB,), default_ingress=None, default_egress=None)
    lines = plan_lines(ruleset)
    assert not [line for line in lines if "default-" in line]
    assert "add map egress-v4 | 172.30.0.2 . br-0123456789ab : return" in lines


def test_empty_filter_drops_every_new_connection() -> None:
    guard = Guard("k", "solo", "test", DB.endpoints, ingress=Filter(), egress=Filter())
    lines = plan_lines(Ruleset((), (guard,), None, None))
    assert [line for line in lines if line.startswith("add chain in-solo |")] == [
        "add chain in-solo | chain in-solo",
        "add chain in-solo | counter drop",
    ]


def test_empty_peer_list_allows_nothing_and_any_protocol_allows_everything() -> None:
    flt = Filter((Allow(peers=()), Allow(peers=(net("10.0.0.0/8"),))))
    guard = Guard("k", "solo", "test", DB.endpoints, ingress=flt, egress=None)
    lines = plan_lines(Ruleset((), (guard,), None, None))
    assert [line for line in lines if line.startswith("add chain in-solo |")] == [
        "add chain in-solo | chain in-solo",
        "add chain in-solo | ip saddr 10.0.0.0/8 counter return",
        "add chain in-solo | counter drop",
    ]


def test_icmp_with_peers_matches_only_that_family() -> None:
    flt = Filter((Allow(peers=(net("2001:db8::/32"),), ports=(PortMatch("icmp"),)),))
    guard = Guard("k", "solo", "test", DB.endpoints, ingress=None, egress=flt)
    assert "add chain out-solo | ip6 daddr 2001:db8::/32 meta l4proto ipv6-icmp counter return" in (
        plan_lines(Ruleset((), (guard,), None, None))
    )


def test_port_without_number_and_udp_ranges() -> None:
    flt = Filter((Allow(ports=(PortMatch("udp"), PortMatch("udp", 60000, 61000))),))
    guard = Guard("k", "solo", "test", DB.endpoints, ingress=flt, egress=None)
    lines = plan_lines(Ruleset((), (guard,), None, None))
    assert "add chain in-solo | meta l4proto udp counter return" in lines
    assert "add chain in-solo | udp dport 60000-61000 counter return" in lines


def test_chain_names_are_container_names_unless_two_share_one() -> None:
    twin = Guard("abcdef123456789", "db", "test", (), None, None)
    assert guard_labels((DB, WEB, twin)) == ["db-c0ffee000001", "web", "db-abcdef123456"]


def test_chain_names_stay_distinct_when_short_ids_collide() -> None:
    """Keys are short ids; twins with one key, or a name that spells another's label."""
    one = Guard("c0ffee000001", "db", "test", (), None, None)
    spelled = Guard("k", "db-c0ffee000001", "test", (), None, None)
    labels = guard_labels((DB, one, spelled, one))
    assert labels == [
        "db-c0ffee000001",
        "db-c0ffee000001-2",
        "db-c0ffee000001-3",
        "db-c0ffee000001-4",
    ]


def test_guards_with_one_key_never_share_a_chain() -> None:
    guards = tuple(
        Guard("000000000000", f"c{i}", "test", (Endpoint("docker0", ip(f"172.17.0.{i + 2}")),),
              ingress=Filter((Allow(peers=(net(f"192.0.2.{i}/32"),)),)), egress=None)
        for i in range(3)
    )  # fmt: skip
    lines = plan_lines(Ruleset(RULESET.bridges, guards, None, None))
    assert [line for line in lines if "saddr 192" in line] == [
        f"add chain in-c{i} | ip saddr 192.0.2.{i} counter return" for i in range(3)
    ]


def test_names_unsafe_for_nft_are_cleaned() -> None:
    odd = Guard("k", "1st app/proxy", "test", (), None, None)
    assert guard_labels((odd,)) == ["c1st_app_proxy"]


PEERS = (
    PeerAllow(ip("172.30.0.3"), ip("172.30.0.2"), (PortMatch("tcp", 5432, 5432),)),
    PeerAllow(ip("172.30.0.4"), ip("172.30.0.2"), (PortMatch("tcp", 5432, 5432),)),
    PeerAllow(ip("172.30.0.4"), ip("172.30.0.2"), (PortMatch("udp", 53, 53),)),
    PeerAllow(ip("172.30.0.5"), ip("172.30.0.2")),
    PeerAllow(
        ip("2001:db8:d0c:1::3"),
        ip("2001:db8:d0c:1::2"),
        (PortMatch("tcp", 5432, 5432), PortMatch("udp", 8000, 8100), PortMatch("icmp")),
    ),
)


def test_not_isolated_peers_pass_as_before() -> None:
    lines = plan_lines(replace(RULESET, peers=PEERS))
    assert "add chain forward | iifname . oifname @intra accept" in lines
    assert not [line for line in lines if "peers" in line]


def test_isolated_peers_are_set_lookups_then_a_counted_drop() -> None:
    lines = plan_lines(replace(RULESET, isolate_peers=True, peers=PEERS))
    assert "add chain forward | iifname . oifname @intra goto peers" in lines
    peers = [line for line in lines if "peers" in line and "forward" not in line]
    assert peers == [
        "add set peers-v4 | type ipv4_addr . ipv4_addr",
        "add set peers-v4 | 172.30.0.5 . 172.30.0.2",
        "add set peers-v4-ports | type ipv4_addr . ipv4_addr . inet_proto . inet_service",
        "add set peers-v4-ports | 172.30.0.3 . 172.30.0.2 . tcp . 5432",
        "add set peers-v4-ports | 172.30.0.4 . 172.30.0.2 . tcp . 5432",
        "add set peers-v4-ports | 172.30.0.4 . 172.30.0.2 . udp . 53",
        "add set peers-v6-0 | type ipv6_addr . ipv6_addr",
        "add set peers-v6-0 | 2001:db8:d0c:1::3 . 2001:db8:d0c:1::2",
        "add set peers-v6-1 | type ipv6_addr . ipv6_addr",
        "add set peers-v6-1 | 2001:db8:d0c:1::3 . 2001:db8:d0c:1::2",
        "add set peers-v6-ports | type ipv6_addr . ipv6_addr . inet_proto . inet_service",
        "add set peers-v6-ports | 2001:db8:d0c:1::3 . 2001:db8:d0c:1::2 . tcp . 5432",
        "add chain peers | chain peers",
        "add chain peers | icmpv6 type { nd-router-solicit, nd-router-advert, "
        "nd-neighbor-solicit, nd-neighbor-advert } accept",
        "add chain peers | ip saddr . ip daddr @peers-v4 counter accept",
        "add chain peers | ip saddr . ip daddr . meta l4proto . th dport @peers-v4-ports "
        "counter accept",
        "add chain peers | ip6 saddr . ip6 daddr . meta l4proto . th dport @peers-v6-ports "
        "counter accept",
        "add chain peers | ip6 saddr . ip6 daddr @peers-v6-0 udp dport 8000-8100 counter accept",
        "add chain peers | ip6 saddr . ip6 daddr @peers-v6-1 meta l4proto ipv6-icmp counter accept",
        "add chain peers | counter drop",
    ]


def test_isolated_without_any_peer_allow_drops_all_but_neighbour_discovery() -> None:
    lines = plan_lines(replace(RULESET, isolate_peers=True))
    assert [line for line in lines if line.startswith("add chain peers |")][2:] == [
        "add chain peers | counter drop"
    ]
    assert not [line for line in lines if line.startswith("add set peers")]


def test_many_peer_pairs_still_cost_the_same_rules() -> None:
    many = tuple(
        PeerAllow(
            ip(f"172.30.{i // 250}.{i % 250 + 2}"), ip("172.30.9.9"), (PortMatch("tcp", 80, 80),)
        )
        for i in range(1000)
    )
    lines = plan_lines(replace(RULESET, isolate_peers=True, peers=many))
    assert len([line for line in lines if line.startswith("add chain peers |")]) == 4
    assert len([line for line in lines if line.startswith("add set peers-v4-ports |")]) == 1001


def test_replicas_sharing_one_filter_share_one_chain() -> None:
    twin = replace(DB, key="c0ffee000009", name="db2")
    lines = plan_lines(replace(RULESET, guards=(DB, WEB, twin)))
    assert "add chain in-db | chain in-db" in lines
    assert not [line for line in lines if line.startswith("add chain in-db2")]
    targets = [line for line in lines if line.startswith("add map ingress-v4 |") and "goto" in line]
    assert targets == ["add map ingress-v4 | 172.30.0.2 . br-0123456789ab : goto in-db"]


def peer_lines(*networks: str) -> list[str]:
    """The plan lines of a guard allowing `networks` in on 80/tcp, without the drop."""
    flt = Filter((Allow(peers=tuple(net(n) for n in networks), ports=(PortMatch("tcp", 80, 80),)),))
    guard = Guard("k", "solo", "test", DB.endpoints, ingress=flt, egress=None)
    lines = plan_lines(Ruleset((), (guard,), None, None))
    return [
        line
        for line in lines
        if ("in-solo" in line and "map" not in line and "drop" not in line)
        and not line.endswith("| chain in-solo")
    ]


def test_one_prefix_is_a_plain_match() -> None:
    assert peer_lines("203.0.113.0/25", "203.0.113.128/25", "203.0.113.7/32") == [
        "add chain in-solo | ip saddr 203.0.113.0/24 tcp dport 80 counter return"
    ]


def test_a_few_prefixes_are_an_anonymous_set_in_address_order() -> None:
    few = [f"192.0.2.{i * 2}/32" for i in reversed(range(8))] + ["2001:db8::/48"]
    assert peer_lines(*few) == [
        "add chain in-solo | ip saddr { 192.0.2.0, 192.0.2.2, 192.0.2.4, 192.0.2.6, 192.0.2.8, "
        "192.0.2.10, 192.0.2.12, 192.0.2.14 } tcp dport 80 counter return",
        "add chain in-solo | ip6 saddr 2001:db8::/48 tcp dport 80 counter return",
    ]


def test_more_than_eight_prefixes_are_one_named_interval_set() -> None:
    many = [f"192.0.2.{i * 2}/32" for i in range(9)]
    assert peer_lines(*many) == [
        "add set in-solo-0-v4 | type ipv4_addr; flags interval",
        *sorted(f"add set in-solo-0-v4 | 192.0.2.{i * 2}" for i in range(9)),
        "add chain in-solo | ip saddr @in-solo-0-v4 tcp dport 80 counter return",
    ]


def test_thousands_of_short_allowlists_need_no_named_set() -> None:
    guards = tuple(
        Guard(f"k{i}", f"c{i}", "test", (Endpoint("docker0", ip(f"172.17.{i // 250}.{i % 250 + 2}")),),
              ingress=DB.ingress, egress=WEB.egress)
        for i in range(1000)
    )  # fmt: skip
    objects = table_objects(Ruleset(RULESET.bridges, guards, None, None))
    assert [o["set"]["name"] for o in objects if "set" in o] == ["bridges", "intra"]
