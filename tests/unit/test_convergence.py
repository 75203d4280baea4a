"""One meaning, one spelling: the compiler's normal forms and each backend's canonical
form, so a plan right after `apply` is empty for every policy (issue 9, section 1).

The lab's property test (tests/lab/test_convergence_property.py) checks the same thing
against the real kernel; these pin the rules down without root, and every failure the
property test found is a named case here or there.
"""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockwall.backends.iptables.backend import chain_changes
from dockwall.backends.iptables.canonical import canonical
from dockwall.backends.iptables.live import parse_filter
from dockwall.backends.iptables.render import render as render_iptables
from dockwall.backends.nftables.describe import rule_text
from dockwall.backends.nftables.render import render as render_nft
from dockwall.backends.nftables.view import table_view
from dockwall.compile.compiler import compile_policy
from dockwall.compile.ir import Allow, Filter, PortMatch
from dockwall.compile.normalize import peers, ports
from dockwall.errors import PolicyError
from dockwall.policy import parse_policy

from .state_samples import STATE

HEAD = "version: 1\ncontainers:\n  - name: web\n"


def nets(*texts: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


def web_ingress(sources: str, ports_: str = "[8080/tcp]") -> Filter | None:
    text = HEAD + f"    ingress: [{{ports: {ports_}, from: {sources}}}]\n"
    compiled = compile_policy(parse_policy(text, "p.yaml"), STATE)
    return next(g for g in compiled.ruleset.guards if g.name == "web").ingress


# --- the compiler's normal forms ------------------------------------------------------


def test_zero_prefix_of_both_families_is_any_address() -> None:
    """Issue 9's case: `from: [0.0.0.0/0, "::/0"]` is `from: [any]`."""
    assert web_ingress('[0.0.0.0/0, "::/0"]') == web_ingress("[any]")
    assert web_ingress('[0.0.0.0/0, "::/0"]') == Filter(
        (Allow(None, (PortMatch("tcp", 8080, 8080),), original=True),)
    )


def test_zero_prefix_of_one_family_stays_that_family() -> None:
    assert peers(nets("0.0.0.0/0", "2001:db8::/32")) == nets("0.0.0.0/0", "2001:db8::/32")
    assert peers(nets("::/0")) == nets("::/0")


def test_covered_duplicate_and_touching_prefixes_merge() -> None:
    given_ = nets(
        "192.0.2.0/24",
        "192.0.2.7/32",
        "192.0.2.0/24",
        "198.51.100.0/25",
        "198.51.100.128/25",
        "2001:db8::1/128",
        "2001:db8::/32",
    )
    assert peers(given_) == nets("192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32")


def test_a_zero_prefix_swallows_the_rest_of_its_family() -> None:
    assert peers(nets("192.0.2.0/24", "0.0.0.0/0", "2001:db8::/32")) == nets(
        "0.0.0.0/0", "2001:db8::/32"
    )
    assert peers(nets("192.0.2.0/24", "0.0.0.0/0", "::/0", "2001:db8::1")) is None


def test_overlapping_and_touching_ports_merge() -> None:
    """The issue's example: 80/tcp, 80-90/tcp, 91/tcp is 80-91/tcp."""
    assert ports(
        [PortMatch("tcp", 80, 80), PortMatch("tcp", 80, 90), PortMatch("tcp", 91, 91)]
    ) == (PortMatch("tcp", 80, 91),)


def test_ports_of_other_protocols_or_with_a_gap_stay_apart() -> None:
    given_ = [
        PortMatch("udp", 53, 53),
        PortMatch("icmp"),
        PortMatch("tcp", 93, 95),
        PortMatch("tcp", 80, 91),
        PortMatch("icmp"),
        PortMatch("udp", 54, 60),
    ]
    assert ports(given_) == (
        PortMatch("tcp", 80, 91),
        PortMatch("tcp", 93, 95),
        PortMatch("udp", 53, 60),
        PortMatch("icmp"),
    )


def test_policy_ports_are_merged_by_the_compiler() -> None:
    flt = web_ingress("[any]", "[80/tcp, 80-90/tcp, 91/tcp]")
    assert flt == Filter((Allow(None, (PortMatch("tcp", 80, 91),), original=True),))


port_specs = st.builds(
    lambda proto, a, b: PortMatch(proto, min(a, b), max(a, b)),
    st.sampled_from(["tcp", "udp"]),
    st.integers(1, 200),
    st.integers(1, 200),
)


@settings(deadline=None)  # a busy machine must not fail it
@given(st.lists(port_specs | st.just(PortMatch("icmp")), max_size=8))
def test_merged_ports_cover_exactly_the_same_ports(given_: list[PortMatch]) -> None:
    def covered(found: list[PortMatch] | tuple[PortMatch, ...]) -> set[tuple[str, int]]:
        return {
            (p.proto, n)
            for p in found
            for n in (range(p.first, (p.last or p.first) + 1) if p.first else [0])
        }

    merged = ports(given_)
    assert covered(merged) == covered(given_)
    assert len(set(merged)) == len(merged)
    for a, b in itertools.pairwise(merged):
        if a.proto == b.proto and a.last is not None and b.first is not None:
            assert b.first > a.last + 1, f"{a} and {b} touch but were not merged"


# --- parse-time refusals --------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "column", "meant"),
    [
        ('"::ffff:192.0.2.5"', 23, "192.0.2.5"),
        ('"::ffff:0:0/96"', 23, "0.0.0.0/0"),
        ('"::ffff:192.0.2.0/120"', 23, "192.0.2.0/24"),
    ],
)
def test_ipv4_mapped_ipv6_is_refused_with_the_reason(written: str, column: int, meant: str) -> None:
    text = HEAD + f"    ingress: [{{from: [{written}]}}]\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "policy.yaml")
    message = str(info.value)
    assert message.startswith(f"policy.yaml:4:{column}: containers[0].ingress[0].from[0]: ")
    assert "IPv4-mapped IPv6 address" in message and "match nothing" in message
    assert message.endswith(f"write {meant}")


def test_ipv4_mapped_ipv6_in_a_container_label_is_refused_too() -> None:
    from dockwall.policy import parse_label_rules

    with pytest.raises(PolicyError, match="IPv4-mapped"):
        parse_label_rules('[{to: ["::ffff:203.0.113.9"]}]', "label web", "egress")


def test_ipv6_networks_that_merely_contain_the_mapped_range_are_fine() -> None:
    flt = web_ingress('["::/64", "::/0"]')
    assert flt is not None and flt.allows[0].peers == nets("::/0")


@pytest.mark.parametrize("written", ["192.0.2.5/24", '"2001:db8::1/64"'])
def test_host_bits_set_are_refused_everywhere(written: str) -> None:
    """Refused, never masked (fields.parse_network says why): one rule for every list."""
    for field in (f"ingress: [{{from: [{written}]}}]", f"egress: [{{to: [{written}]}}]"):
        with pytest.raises(PolicyError, match="has host bits set"):
            parse_policy(HEAD + "    " + field + "\n", "p.yaml")
    caps = f"version: 1\nlabels: {{ingress_from: [{written}]}}\n"
    with pytest.raises(PolicyError, match="has host bits set"):
        parse_policy(caps, "p.yaml")


# --- iptables: canonical() is iptables-save's spelling --------------------------------

# What this machine's iptables-save / ip6tables-save (1.8.9, nf_tables) printed back for
# each rule as loaded; checked in a lab (see the property test for the live check).
SAVED = {
    "-s 0.0.0.0/0 -p tcp -m conntrack --ctorigdstport 8080 --ctdir ORIGINAL -j RETURN": (
        "-p tcp -m conntrack --ctorigdstport 8080 --ctdir ORIGINAL -j RETURN"
    ),
    "-s ::/0 -j RETURN": "-j RETURN",
    "-s 192.0.2.5 -j RETURN": "-s 192.0.2.5/32 -j RETURN",
    "-s 2001:db8::1 -j RETURN": "-s 2001:db8::1/128 -j RETURN",
    "-s 2001:DB8:0:0::/64 -j RETURN": "-s 2001:db8::/64 -j RETURN",
    "-d 192.0.2.0/255.255.255.0 -j RETURN": "-d 192.0.2.0/24 -j RETURN",
    "-p tcp --dport 80:80 -j RETURN": "-p tcp -m tcp --dport 80 -j RETURN",
    "-p tcp -m tcp --dport 80:90 -j RETURN": "-p tcp -m tcp --dport 80:90 -j RETURN",
    "-p udp -m multiport --dports 53,80:90 -j RETURN": (
        "-p udp -m multiport --dports 53,80:90 -j RETURN"
    ),
    "-p icmp -m icmp --icmp-type echo-request -j RETURN": "-p icmp -m icmp --icmp-type 8 -j RETURN",
    "-p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j RETURN": (
        "-p ipv6-icmp -m icmp6 --icmpv6-type 128 -j RETURN"
    ),
    "-p icmpv6 -j RETURN": "-p ipv6-icmp -j RETURN",
    "-p 17 -j RETURN": "-p udp -j RETURN",
    "-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN": (
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    ),
    "-o br-+ ! -i br-+ -j RETURN": "! -i br-+ -o br-+ -j RETURN",
    '-m comment --comment "dock wall" -j RETURN': '-m comment --comment "dock wall" -j RETURN',
    "-p tcp -m conntrack --ctorigdstport 8080:8090 --ctdir ORIGINAL -j RETURN": (
        "-p tcp -m conntrack --ctorigdstport 8080:8090 --ctdir ORIGINAL -j RETURN"
    ),
}


@pytest.mark.parametrize(("loaded", "saved"), SAVED.items())
def test_canonical_is_what_iptables_save_prints(loaded: str, saved: str) -> None:
    assert canonical(loaded) == saved
    assert canonical(saved) == saved


def test_a_rule_canonical_cannot_read_is_kept_word_for_word() -> None:
    odd = "-m conntrack --ctstate ! NEW -j RETURN"
    assert canonical(odd) == odd


def test_everything_dockwall_renders_is_already_canonical() -> None:
    """So the plan's cheap path (texts equal as written) is the usual one."""
    text = HEAD + (
        "    ingress: [{ports: [80/tcp, 81-90/udp, icmp], from: [0.0.0.0/0, 192.0.2.0/24]},"
        ' {container_ports: [80/tcp], from: ["::/0"]}]\n'
        "    egress: [{to: [203.0.113.9, 0.0.0.0/0], ports: [443/tcp]}]\n"
        "defaults: {ingress: deny, egress: deny, peers: deny}\n"
    )
    ruleset = compile_policy(parse_policy(text, "p.yaml"), STATE).ruleset
    for family in ("ipv4", "ipv6"):
        for rules in render_iptables(ruleset, family).chains.values():
            for rule in rules:
                assert canonical(rule) == rule
                assert "/0" not in rule


def test_a_rule_spelled_otherwise_is_no_change() -> None:
    live = parse_filter(
        "*filter\n:DOCKWALL-I-x - [0:0]\n"
        "-A DOCKWALL-I-x -s 0.0.0.0/0 -p tcp --dport 80:80 -j RETURN\n"
        "-A DOCKWALL-I-x -j DROP\nCOMMIT\n"
    )
    desired = {"DOCKWALL-I-x": ["-p tcp -m tcp --dport 80 -j RETURN", "-j DROP"]}
    assert chain_changes("ipv4", live, desired) == []
    moved = {"DOCKWALL-I-x": ["-j DROP", "-p tcp -m tcp --dport 80 -j RETURN"]}
    assert chain_changes("ipv4", live, moved) != [], "order still matters"


# --- nftables: the view is what `nft -j list` prints ----------------------------------


def test_nft_renders_a_zero_prefix_as_the_family() -> None:
    text = HEAD + "    ingress: [{ports: [8080/tcp], from: [0.0.0.0/0]}]\n"
    ruleset = compile_policy(parse_policy(text, "p.yaml"), STATE).ruleset
    rules = [
        r for c in table_view(add_bodies(render_nft(ruleset))).chains.values() for r in c.rules
    ]
    assert any(r.startswith("meta nfproto ipv4 meta l4proto tcp") for r in rules), rules
    assert not any("0.0.0.0/0" in r for r in rules)


def add_bodies(commands: list[dict[str, object]]) -> list[dict[str, object]]:
    return [c["add"] for c in commands if "add" in c and "table" not in c["add"]]  # type: ignore[misc]


PORT = {"payload": {"protocol": "tcp", "field": "dport"}}
SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}


@pytest.mark.parametrize(
    ("rendered", "printed"),
    [
        ({"set": [80]}, 80),
        ({"range": [80, 80]}, 80),
        ({"set": ["192.0.2.7"]}, "192.0.2.7"),
        ({"prefix": {"addr": "192.0.2.5", "len": 32}}, "192.0.2.5"),
        (
            {"set": [{"prefix": {"addr": "192.0.2.0", "len": 25}}, "192.0.2.128/25"]},
            {"prefix": {"addr": "192.0.2.0", "len": 24}},
        ),
    ],
)
def test_nft_forms_printed_back_otherwise_describe_alike(rendered: object, printed: object) -> None:
    left = PORT if isinstance(printed, int) else SADDR

    def text(right: object) -> str:
        return rule_text([{"match": {"op": "==", "left": left, "right": right}}, {"return": None}])

    assert text(rendered) == text(printed)


def test_nft_family_implied_by_icmp_is_neither_rendered_nor_compared() -> None:
    """Found by the lab: nft prints `meta nfproto ipv6 meta l4proto ipv6-icmp` back as
    `meta l4proto ipv6-icmp`, so `to: ["::/0"]` with `icmp` never converged."""
    text = HEAD + '    egress: [{to: ["::/0", 203.0.113.0/24], ports: [icmp, 443/tcp]}]\n'
    ruleset = compile_policy(parse_policy(text, "p.yaml"), STATE).ruleset
    rules = [
        r for c in table_view(add_bodies(render_nft(ruleset))).chains.values() for r in c.rules
    ]
    assert "meta l4proto ipv6-icmp counter return" in rules
    assert "meta nfproto ipv6 tcp dport 443 counter return" in rules
    nfproto = {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}}
    l4proto = {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "ipv6-icmp"}}
    assert rule_text([nfproto, l4proto]) == rule_text([l4proto])
