"""Exact ownership, hostile names and unseen interfaces: the pure parts (no root)."""

from __future__ import annotations

import ipaddress

import pytest

from dockwall.backends.iptables import ipsets
from dockwall.backends.iptables.basechains import leftover_script, missing_script, parse_table
from dockwall.backends.iptables.ipsets import LiveSet
from dockwall.backends.iptables.live import parse_filter
from dockwall.backends.iptables.ownership import OWNED, free_name, is_hook, ours, renamed
from dockwall.backends.iptables.render import render
from dockwall.compile.ir import Endpoint, Filter, Guard, Ruleset, plain_interface
from dockwall.errors import DockwallError
from dockwall.model.state import Bridge
from dockwall.sources.interfaces import own_interfaces

SAVE = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:DOCKER-USER - [0:0]
:DOCKWALL-FORWARD - [0:0]
:DOCKWALL-MINE - [0:0]
:DOCKWALL-I-0123456789ab - [0:0]
:DOCKWALL-E-0123456789ab - [0:0]
:DOCKWALL-I-foo - [0:0]
-A INPUT -s 10.9.9.9/32 -m comment --comment dockwall-test -j ACCEPT
-A INPUT -m comment --comment dockwall -j DOCKWALL-MINE
-A FORWARD -s 10.8.8.8/32 -j DOCKWALL-MINE
-A DOCKER-USER -m comment --comment dockwall -j DOCKWALL-FORWARD
-A DOCKWALL-FORWARD -m comment --comment dockwall-chain
-A DOCKWALL-FORWARD -d 172.17.0.2/32 -g DOCKWALL-I-0123456789ab
-A DOCKWALL-MINE -s 10.8.8.8/32 -j LOG
COMMIT
"""


def test_only_marked_chains_and_emptied_ones_only_we_jump_to_are_ours() -> None:
    table = parse_filter(SAVE)
    assert ours(table) == ["DOCKWALL-FORWARD", "DOCKWALL-I-0123456789ab"]
    assert "DOCKWALL-E-0123456789ab" not in ours(table), "empty, but nothing of ours uses it"
    assert not is_hook(table, "-m comment --comment dockwall -j DOCKWALL-MINE", ours(table))
    assert not is_hook(table, "-s 10.9.9.9/32 -m comment --comment dockwall-test -j ACCEPT", [])
    assert is_hook(table, "-m comment --comment dockwall -j DOCKWALL-FORWARD", ours(table))


def test_a_name_someone_else_holds_gets_the_next_free_variant_and_jumps_follow() -> None:
    table = parse_filter(
        SAVE.replace("-A DOCKWALL-FORWARD -m comment --comment dockwall-chain\n", "")
    )
    desired = {"DOCKWALL-FORWARD": [OWNED, "-g DOCKWALL-DEFAULT-I"], "DOCKWALL-DEFAULT-I": [OWNED]}
    assert renamed(desired, table) == {
        "DOCKWALL1-FORWARD": [OWNED, "-g DOCKWALL-DEFAULT-I"],
        "DOCKWALL-DEFAULT-I": [OWNED],
    }
    taken = {"DOCKWALL-X", *(f"DOCKWALL{n}-X" for n in range(1, 10))}
    with pytest.raises(DockwallError, match="belong to someone else"):
        free_name("DOCKWALL-X", taken)


def test_every_rendered_chain_starts_with_the_mark() -> None:
    bridge = Bridge("b", "docker0")
    guard = Guard(
        "k" * 12,
        "web",
        "t",
        (Endpoint("docker0", ipaddress.ip_address("172.17.0.2")),),
        Filter(),
        None,
    )
    chains = render(
        Ruleset((bridge,), (guard,), Filter(), Filter(), host_interfaces=("lo",)), "ipv4"
    ).chains
    assert all(rules[0] == OWNED for rules in chains.values())


def test_sets_are_ours_when_named_after_their_contents_or_used_by_our_chains() -> None:
    found = ipsets.set_for("ipv4", [ipaddress.ip_network(f"192.0.2.{i}/32") for i in range(9)])
    live = {
        found.name: LiveSet("ipv4", frozenset(found.members)),
        "dockwall-mine": LiveSet("ipv4", frozenset({"10.6.6.0/24"})),
        "dockwall-0123456789abcdef": LiveSet("ipv4", frozenset()),
        "dockwall-fedcba9876543210": LiveSet("ipv4", frozenset({"10.0.0.0/8"})),
    }
    mine = ipsets.ours(live, {"dockwall-fedcba9876543210"}, set())
    assert set(mine) == {found.name, "dockwall-fedcba9876543210"}
    with pytest.raises(DockwallError, match="not dockwall's"):
        ipsets.ours(live, set(), {"dockwall-0123456789abcdef"})


LISTING = """\
table ip filter {
\tcomment "dockwall-created"
\tchain INPUT {
\t\tcomment "dockwall-created"
\t\ttype filter hook input priority filter; policy accept;
\t}

\tchain FORWARD {
\t\ttype filter hook forward priority filter; policy drop;
\t\tcounter packets 0 bytes 0 jump DOCKER-USER
\t}
}
"""


def test_base_chains_we_made_go_once_empty_and_others_never() -> None:
    table = parse_table(LISTING)
    assert leftover_script(table, "ipv4") == "delete chain ip filter INPUT\n"
    assert missing_script(table, "ipv4") == ""
    only_ours = parse_table(LISTING.split("\n\n\tchain FORWARD", maxsplit=1)[0] + "\n}\n")
    assert leftover_script(only_ours, "ipv6") == (
        "delete chain ip6 filter INPUT\ndelete table ip6 filter\n"
    )
    assert missing_script(None, "ipv4").startswith(
        'add table ip filter { comment "dockwall-created"; }'
    )
    busy = parse_table(LISTING.replace("policy accept;\n", "policy accept;\n\t\tcounter accept\n"))
    assert leftover_script(busy, "ipv4") == ""


@pytest.mark.parametrize("name", ["docker0", "br-0123456789ab", "mybr0", "br_x", "a.b@c-d"])
def test_plain_interface_names(name: str) -> None:
    assert plain_interface(name)


@pytest.mark.parametrize("name", ['q"q', "a+", "x*", "d$'\\", "", "a" * 16, "a b"])
def test_names_that_are_never_written(name: str) -> None:
    assert not plain_interface(name)


def test_the_hosts_own_interfaces_leave_out_docker_bridges_and_bridge_ports() -> None:
    links = [
        {"ifname": "lo"},
        {"ifname": "eth0"},
        {"ifname": "docker0"},
        {"ifname": "veth1", "master": "docker0"},
        {"ifname": "virbr0"},
    ]
    assert own_interfaces(links, {"docker0"}) == ("eth0", "lo", "virbr0")


def test_unseen_interfaces_are_held_by_the_defaults_without_naming_them() -> None:
    ruleset = Ruleset(
        (Bridge("b", "docker0"), Bridge("odd", 'q"q')),
        (),
        Filter(),
        Filter(),
        host_interfaces=("lo", "uplink"),
    )
    chains = render(ruleset, "ipv4").chains
    assert chains["DOCKWALL-UNSEEN-I"][1:] == [
        "-o lo -j RETURN",
        "-o uplink -j RETURN",
        "-i lo -g DOCKWALL-DEFAULT-I",
        "-i uplink -g DOCKWALL-DEFAULT-I",
    ]
    assert chains["DOCKWALL-INPUT"][-1] == "-g DOCKWALL-DEFAULT-E"
    assert not any('q"q' in r for rules in chains.values() for r in rules)
    assert not any("br-+" in r for rules in chains.values() for r in rules)
