"""explain on `-m set --match-set` rules, with sets read from saved `ipset save` text.

`ipset/ipset-save.txt` holds hand-made sets of each modelled type, as the kernel
listed them (`nomatch`, counters, comments, timeouts, `netmask`); `dockwall-ipset-lab/`
is a lab host after `dockwall apply --backend iptables` of allowlists long enough to
become sets (the `ipset-allowlists` policy of tests/lab/test_explain_differential.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from dockwall.explain.addresses import parse_address
from dockwall.explain.endpoints import start
from dockwall.explain.host import LiveHost
from dockwall.explain.hostnet import HostNet, parse_addresses, parse_routes
from dockwall.explain.iptables.ipsets import LiveIpSets, parse_ipset_save
from dockwall.explain.iptables.parse import parse_iptables_save
from dockwall.explain.iptables.rule import clear_memo, fast_rule, parse_rule, token_rule
from dockwall.explain.live import read_ipsets
from dockwall.explain.live_ruleset import LiveRuleset
from dockwall.explain.netfilter import Condition, SetMatch, Unsupported
from dockwall.explain.packet import Packet, first_packet
from dockwall.explain.simulate import Explanation, explain_connection

from .fakes import FakeRunner
from .test_explain_dockwall_policies import CONTAINERS

DATA = Path(__file__).parent / "data" / "rulesets"
LAB = DATA / "dockwall-ipset-lab"
SAVED_SETS = (DATA / "ipset" / "ipset-save.txt").read_text()
TCP, UDP, ICMP, GRE, SCTP = 6, 17, 1, 47, 132


def rule_conditions(text: str, version: int = 4) -> tuple[Condition, ...]:
    """The rule read by both readers, which must agree."""
    clear_memo()
    slow = token_rule(text, version, set())
    assert parse_rule(text, version, set()) == slow
    return slow.conditions


def test_match_set_is_read() -> None:
    conditions = rule_conditions("-A X -p tcp -m set --match-set allow src,dst -j ACCEPT")
    assert conditions[1] == Condition(SetMatch("allow", ("src", "dst")))


def test_plain_match_set_takes_the_fast_reader() -> None:
    text = "-A X -p tcp -m set --match-set dockwall-0123 src -m tcp --dport 80 -j RETURN"
    rule = fast_rule(text, 4, set())
    assert rule is not None
    assert rule.conditions[1] == Condition(SetMatch("dockwall-0123", ("src",)))


def test_negation_return_nomatch_and_counter_flags() -> None:
    # as iptables-save printed it in a lab
    text = (
        "-A INPUT -m set ! --match-set ytest src --return-nomatch ! --update-counters "
        "! --update-subcounters -j ACCEPT"
    )
    assert rule_conditions(text) == (Condition(SetMatch("ytest", ("src",), True), negate=True),)


def test_return_nomatch_belongs_to_its_own_match() -> None:
    text = "-A X -m set --match-set a src -m set --match-set b dst --return-nomatch -j DROP"
    assert rule_conditions(text) == (
        Condition(SetMatch("a", ("src",))),
        Condition(SetMatch("b", ("dst",), True)),
    )


def test_counter_matches_stay_unsupported() -> None:
    text = "-A INPUT -m set --match-set ytestm src --packets-gt 3 -j ACCEPT"
    conditions = rule_conditions(text)
    assert conditions[0] == Condition(SetMatch("ytestm", ("src",)))
    assert isinstance(conditions[1].test, Unsupported)


def packet(version: int, proto: int, src: str, dst: str, dport: int | None = None) -> Packet:
    sport = 40000 if dport is not None else None
    return first_packet(
        version, proto, parse_address(src)[1], parse_address(dst)[1], sport=sport, dport=dport
    )


def lookup(
    sets: LiveIpSets, name: str, dirs: str, p: Packet, *, return_nomatch: bool = False
) -> bool | None:
    directions: list[Literal["src", "dst"]] = [
        "src" if d == "src" else "dst" for d in dirs.split(",")
    ]
    return sets.test(SetMatch(name, tuple(directions), return_nomatch), p)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", True),
        ("10.200.1.1", True),
        ("10.1.5.5", False),  # 10.1.0.0/16 nomatch, more specific than 10.0.0.0/8
        ("10.1.2.3", True),  # /32 entry, more specific than the nomatch /16
        ("11.0.0.1", False),
    ],
)
def test_hash_net_most_specific_entry_decides(address: str, expected: bool) -> None:
    sets = parse_ipset_save(SAVED_SETS)
    p = packet(4, TCP, address, "192.0.2.1", 80)
    assert lookup(sets, "ytest", "src", p) is expected
    assert lookup(sets, "ytest", "dst", p) is False
    # --return-nomatch: only a nomatch entry matches, nothing outside the set
    assert lookup(sets, "ytest", "src", p, return_nomatch=True) is (address == "10.1.5.5")


def test_hash_ip_port() -> None:
    sets = parse_ipset_save(SAVED_SETS)
    assert lookup(sets, "ytestp", "dst,dst", packet(4, TCP, "1.1.1.1", "10.0.0.1", 80)) is True
    assert lookup(sets, "ytestp", "dst,dst", packet(4, TCP, "1.1.1.1", "10.0.0.1", 81)) is False
    assert lookup(sets, "ytestp", "dst,dst", packet(4, UDP, "1.1.1.1", "10.0.0.1", 80)) is False
    assert lookup(sets, "ytestp", "dst,dst", packet(4, UDP, "1.1.1.1", "10.0.0.1", 53)) is True
    assert lookup(sets, "ytestp", "dst,dst", packet(4, SCTP, "1.1.1.1", "10.0.0.4", 9)) is True
    # the port of the other end: the packet's source port is 40000
    assert lookup(sets, "ytestp", "dst,src", packet(4, TCP, "1.1.1.1", "10.0.0.1", 80)) is False
    # icmp:echo-request is type 8 code 0; gre:0 is any GRE packet
    assert lookup(sets, "ytestp", "dst,dst", packet(4, ICMP, "1.1.1.1", "10.0.0.2")) is True
    assert lookup(sets, "ytestp", "dst,dst", packet(4, ICMP, "1.1.1.1", "10.0.0.1")) is False
    assert lookup(sets, "ytestp", "dst,dst", packet(4, GRE, "1.1.1.1", "10.0.0.3")) is True
    # fewer directions than the set has dimensions never matches (the kernel's rule)
    assert lookup(sets, "ytestp", "dst", packet(4, TCP, "1.1.1.1", "10.0.0.1", 80)) is False


def test_hash_net_port_inet6_with_nomatch_counters_and_comment() -> None:
    sets = parse_ipset_save(SAVED_SETS)
    inside = packet(6, TCP, "2001:db8:ffff::1", "2001:db8:5::1", 443)
    excluded = packet(6, TCP, "2001:db8:ffff::1", "2001:db8:1::1", 443)
    assert lookup(sets, "ytestn", "dst,dst", inside) is True
    assert lookup(sets, "ytestn", "dst,dst", excluded) is False
    assert lookup(sets, "ytestn", "dst,dst", excluded, return_nomatch=True) is True
    assert lookup(sets, "ytestn", "dst,dst", packet(6, TCP, "::1", "2001:db8::1", 80)) is False
    # an IPv6 set never matches an IPv4 packet
    assert lookup(sets, "ytestn", "dst,dst", packet(4, TCP, "1.1.1.1", "10.0.0.1", 443)) is False


def test_hash_ip_netmask_and_inet6() -> None:
    sets = parse_ipset_save(SAVED_SETS)
    assert lookup(sets, "ytestm", "src", packet(4, UDP, "10.9.9.200", "1.1.1.1", 53)) is True
    assert lookup(sets, "ytestm", "src", packet(4, UDP, "10.9.8.1", "1.1.1.1", 53)) is False
    assert lookup(sets, "ytesti", "src", packet(6, UDP, "2001:db8::1", "::1", 53)) is True
    assert lookup(sets, "ytesti", "src", packet(6, UDP, "2001:db8::2", "::1", 53)) is False
    masked = parse_ipset_save(
        "create yb hash:ip family inet bitmask 255.255.0.255\nadd yb 10.1.0.5\n"
    )
    assert lookup(masked, "yb", "src", packet(4, UDP, "10.1.77.5", "1.1.1.1", 53)) is True
    assert lookup(masked, "yb", "src", packet(4, UDP, "10.1.77.6", "1.1.1.1", 53)) is False
    # hash:ip has no nomatch entries, so --return-nomatch changes nothing
    p = packet(6, UDP, "2001:db8::1", "::1", 53)
    assert lookup(sets, "ytesti", "src", p, return_nomatch=True) is True


def test_what_cannot_be_told_stays_unknown() -> None:
    text = SAVED_SETS + (
        "create ylist list:set size 8\n"
        "add ylist ytest\n"
        "create yicmp hash:ip,port family inet hashsize 64 maxelem 8\n"
        "add yicmp 10.0.0.1,icmp:router-advertisement\n"
        "add yicmp 10.0.0.1,tcp:22\n"
    )
    sets = parse_ipset_save(text)
    p = packet(4, TCP, "10.0.0.1", "10.0.0.1", 22)
    assert lookup(sets, "ylist", "src", p) is None
    assert "list:set" in sets.why(SetMatch("ylist", ("src",)), p)
    assert lookup(sets, "missing", "src", p) is None
    assert "missing" in sets.why(SetMatch("missing", ("src",)), p)
    # an entry it cannot read makes only its own protocol unknown
    assert lookup(sets, "yicmp", "src,dst", p) is True
    ping = packet(4, ICMP, "10.0.0.1", "10.0.0.1")
    assert lookup(sets, "yicmp", "src,dst", ping) is None
    assert "router-advertisement" in sets.why(SetMatch("yicmp", ("src", "dst")), ping)


def test_read_ipsets_through_the_runner() -> None:
    runner = FakeRunner(lambda argv, _: (0, SAVED_SETS) if argv == ["ipset", "save"] else (1, ""))
    sets = read_ipsets(runner)
    assert sets.problem is None
    assert sets.names() == {"ytest", "ytestp", "ytestn", "ytestm", "ytesti"}
    missing = read_ipsets(FakeRunner(lambda argv, _: (127, "ipset: not found")))
    assert missing.problem is not None
    assert lookup(missing, "ytest", "src", packet(4, TCP, "10.0.0.1", "1.1.1.1", 80)) is None


def lab_state(ipsets: LiveIpSets | None) -> LiveHost:
    tables = parse_iptables_save((LAB / "iptables-save.txt").read_text(), 4, "iptables-nft")
    tables += parse_iptables_save((LAB / "ip6tables-save.txt").read_text(), 6, "iptables-nft")
    routes = parse_routes((LAB / "ip-route4.json").read_text(), 4)
    routes += parse_routes((LAB / "ip-route6.json").read_text(), 6)
    net = HostNet(parse_addresses((LAB / "ip-addr.json").read_text()), routes)
    state = LiveHost(LiveRuleset(tables), net, list(CONTAINERS))
    if ipsets is not None:
        state.ipsets = ipsets
    return state


def explained(state: LiveHost, source: str, destination: str) -> Explanation:
    begin = start(state, source, destination)
    return explain_connection(state, begin.packet, begin.local_origin)


DOCKWALL_SETS = [
    ("192.0.2.7", "host:8080/tcp", "accept"),
    ("203.0.113.70", "host:8080/tcp", "accept"),
    ("203.0.113.20", "host:8080/tcp", "drop"),
    ("192.0.2.200", "host:5432/tcp", "drop"),
    ("203.0.113.10", "host:5432/tcp", "accept"),
    ("2001:db8:100::100", "host:8080/tcp", "accept"),
    ("2001:db8:200::7", "host:8080/tcp", "drop"),
    ("2001:db8:200:8000::7", "host:5432/tcp", "accept"),
    ("2001:db8:203::20", "host:5432/tcp", "drop"),
    ("192.0.2.100", "host:8053/udp", "drop"),
    ("container:web", "203.0.113.10:8443/tcp", "accept"),
    ("container:web", "203.0.113.20:443/tcp", "drop"),
    ("container:web", "[2001:db8:100::100]:53/udp", "accept"),
    ("container:web", "[2001:db8:200::7]:80/tcp", "drop"),
    ("container:worker", "203.0.113.10:443/tcp", "accept"),
    ("container:worker", "203.0.113.10:8443/tcp", "drop"),
    ("container:worker", "203.0.113.10:53/udp", "accept"),
    ("container:worker", "203.0.113.10:53/tcp", "drop"),
    ("container:worker", "[2001:db8:203::10]:80/tcp", "accept"),
    ("container:worker", "[2001:db8:203::20]:443/tcp", "drop"),
    ("container:db", "203.0.113.20:443/tcp", "accept"),
]


@pytest.mark.parametrize(("source", "destination", "expected"), DOCKWALL_SETS)
def test_dockwall_allowlists_in_ipsets(source: str, destination: str, expected: str) -> None:
    state = lab_state(parse_ipset_save((LAB / "ipset-save.txt").read_text()))
    result = explained(state, source, destination)
    assert result.verdict == expected, result.unknown


def test_without_the_sets_a_set_rule_is_unknown_and_says_why() -> None:
    unread = lab_state(None)
    result = explained(unread, "192.0.2.7", "host:8080/tcp")
    assert result.verdict == "unknown"
    assert any("--match-set dockwall-" in u and "not read" in u for u in result.unknown)
    # a connection no set rule decides is still told
    assert explained(unread, "container:db", "203.0.113.20:443/tcp").verdict == "accept"
    empty = lab_state(parse_ipset_save(""))
    result = explained(empty, "container:worker", "203.0.113.10:443/tcp")
    assert result.verdict == "unknown"
    assert any("does not list a set" in u for u in result.unknown)
