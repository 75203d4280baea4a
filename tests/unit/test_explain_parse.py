"""Parsers on rulesets saved from real hosts and written from Docker's documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockwall.explain.addresses import parse_address
from dockwall.explain.iptables.parse import RulesetParseError, parse_iptables_save
from dockwall.explain.netfilter import (
    CtPort,
    CtState,
    IcmpType,
    Iface,
    Jump,
    Nat,
    Port,
    Table,
    UnknownAction,
    Unsupported,
    Vmap,
)
from dockwall.explain.nft.parse import parse_nft_json

DATA = Path(__file__).parent / "data" / "rulesets"


def read(name: str) -> str:
    return (DATA / name).read_text()


def by_name(tables: list[Table]) -> dict[str, Table]:
    return {t.name: t for t in tables}


def test_docker20_iptables_save_with_counters() -> None:
    tables = by_name(parse_iptables_save(read("docker20-lab/iptables-save.txt"), 4, "iptables-nft"))
    assert set(tables) == {"filter", "nat"}
    forward = tables["filter"].chains["FORWARD"]
    assert forward.base is not None and forward.base.policy == "drop" and forward.base.priority == 0
    assert forward.rules[0].action == Jump("DOCKER-USER")
    assert forward.rules[0].text == "-A FORWARD -j DOCKER-USER"
    dnat = [r.action for r in tables["nat"].chains["DOCKER"].rules if isinstance(r.action, Nat)]
    assert Nat("dnat", parse_address("172.17.0.2")[1], 80) in dnat


def test_docker20_ip6tables_dnat_in_brackets() -> None:
    tables = by_name(
        parse_iptables_save(read("docker20-lab/ip6tables-save.txt"), 6, "iptables-nft")
    )
    assert "DOCKER-USER" not in tables["filter"].chains
    actions = [r.action for r in tables["nat"].chains["DOCKER"].rules]
    assert Nat("dnat", parse_address("2001:db8:d0c::242:ac11:2")[1], 80) in actions


def test_docker28_layout_with_raw_table() -> None:
    tables = by_name(parse_iptables_save(read("docker28/iptables-save.txt"), 4, "iptables-nft"))
    raw = tables["raw"].chains["PREROUTING"]
    assert raw.base is not None and raw.base.priority == -300
    assert {"DOCKER-FORWARD", "DOCKER-BRIDGE", "DOCKER-CT"} <= set(tables["filter"].chains)
    ct_rule = tables["filter"].chains["DOCKER-CT"].rules[0]
    assert CtState(frozenset({"RELATED", "ESTABLISHED"})) in [c.test for c in ct_rule.conditions]


def test_docker29_nftables_tables() -> None:
    tables = by_name(parse_nft_json(read("docker29-nft/nft.json")))
    assert set(tables) == {"docker-bridges", "user-filter"}
    bridges = tables["docker-bridges"].chains
    raw = bridges["raw-PREROUTING"].base
    assert raw is not None and (raw.hook, raw.priority) == ("prerouting", -300)
    vmap = bridges["filter-FORWARD"].rules[0].action
    assert isinstance(vmap, Vmap)
    assert vmap.entries[0][0].test == Iface("out", ("docker0",))
    assert vmap.entries[0][1] == Jump("filter-forward-in__docker0")
    dnat = bridges["nat-prerouting-and-output"].rules[0]
    assert dnat.action == Nat("dnat", parse_address("172.17.0.2")[1], 80)
    user = tables["user-filter"].chains["forward"]
    assert user.base is not None and user.base.priority == -1
    tests = [c.test for c in user.rules[1].conditions]
    assert CtPort("origdst", ((8080, 8080),)) in tests


def test_nft_sets_ranges_and_unsupported_statements() -> None:
    chain = parse_nft_json(read("nft-features.json"))[0].chains["myforward"]
    texts = [r.text for r in chain.rules]
    assert "ct state established,related accept" in texts
    allow = chain.rules[4]
    port = next(c.test for c in allow.conditions if isinstance(c.test, Port))
    assert port.ranges == ((80, 80), (443, 443), (8000, 8100))
    icmp = [c.test for c in chain.rules[5].conditions]
    assert IcmpType(6, 128) in icmp
    limited = chain.rules[11]
    assert any(isinstance(c.test, Unsupported) for c in limited.conditions)


def test_iptables_nft_tables_are_skipped_when_read_from_iptables_save() -> None:
    skip = {("ip", "filter"), ("ip", "nat"), ("ip6", "filter"), ("ip6", "nat")}
    assert parse_nft_json(read("docker20-lab/nft.json"), skip) == []


def test_unknown_matches_and_targets_are_kept_not_dropped() -> None:
    text = """*filter
:INPUT ACCEPT [0:0]
:ufw-limit - [0:0]
-A INPUT -p tcp -m recent --name ssh --rcheck --seconds 30 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j NFQUEUE --queue-num 1
-A INPUT -m comment --comment "a -j DROP looking comment" -j ufw-limit
-A INPUT ! -i lo -p ipv6-icmp -j ACCEPT
COMMIT
"""
    rules = parse_iptables_save(text, 6, "iptables-legacy")[0].chains["INPUT"].rules
    unsupported = [c.test.text for c in rules[0].conditions if isinstance(c.test, Unsupported)]
    assert "-m recent --rcheck" in unsupported
    assert isinstance(rules[1].action, UnknownAction)
    assert rules[2].action == Jump("ufw-limit") and rules[2].conditions == ()
    assert rules[3].conditions[0].negate


@pytest.mark.parametrize(
    "bad",
    [
        "*filter\n-A NOPE -j ACCEPT\nCOMMIT\n",
        "-A INPUT -j ACCEPT\n",
        "*filter\n:INPUT ACCEPT\n-A INPUT -s\n",
    ],
)
def test_malformed_input_is_a_clear_error(bad: str) -> None:
    with pytest.raises(RulesetParseError):
        parse_iptables_save(bad, 4, "iptables-nft")
