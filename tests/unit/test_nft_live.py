"""Reading the live table back and planning against it, with a fake runner (no root).

LISTING is what `nft -j list table inet dockwall` printed in a lab after NftablesBackend
loaded the render of test_nft_render.RULESET (as an nft script): the round trip a real
kernel and nft 1.0.6 make. PEERS_LISTING and SETS_LISTING are the same for their rulesets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest

from dockwall.backends.nftables import NftablesBackend, docker_uses_nftables
from dockwall.backends.nftables.backend import load
from dockwall.backends.nftables.live import TERSE_ARGV, listing_objects, rule_counters
from dockwall.backends.nftables.plan import table_changes
from dockwall.backends.nftables.render import render, table_objects
from dockwall.backends.nftables.view import TableView, table_view
from dockwall.backends.transaction import Transaction
from dockwall.compile.ir import Allow, Endpoint, Filter, Guard, PortMatch, Ruleset
from dockwall.errors import CommandError, DockwallError
from dockwall.model.state import Bridge
from dockwall.runner import Result
from tests.unit.test_nft_render import PEERS, RULESET, WEB, ip, net

OWNED_CHAIN = {
    "chain": {"family": "inet", "table": "dockwall", "name": "owned-by-dockwall", "handle": 99}
}


def marked(listing: str) -> str:
    """A listing recorded before tables carried the mark chain, as nft prints it now."""
    document = json.loads(listing)
    document["nftables"].insert(2, OWNED_CHAIN)
    return json.dumps(document)


@dataclass
class FakeRunner:
    """Answers by argv prefix and records every call with its input."""

    answers: dict[tuple[str, ...], Result | CommandError] = field(default_factory=dict)
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> Result:
        self.calls.append((list(argv), input))
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                if isinstance(answer, CommandError):
                    raise answer
                return answer
        return Result(list(argv), 0, "", "")

    def spawn(self, argv: Sequence[str], *, log_path: str) -> int:
        raise AssertionError("the backend never spawns")


def answer(stdout: str = "", returncode: int = 0, stderr: str = "") -> Result:
    return Result([], returncode, stdout, stderr)


def listed(listing: str) -> dict[tuple[str, ...], Result | CommandError]:
    """How nft answers for the table of `listing` (an `nft -j list table`): the terse
    ruleset listing (named sets without elements, beside another table), and each set
    or map alone with its elements."""
    objects = json.loads(listing)["nftables"]
    table = {"table": {"family": "inet", "name": "dockwall", "handle": 1}}
    other = {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1}}
    terse = [table, other]
    answers: dict[tuple[str, ...], Result | CommandError] = {}
    for obj in objects:
        (kind, body), *_ = obj.items()
        if kind in ("set", "map"):
            terse.append({kind: {k: v for k, v in body.items() if k != "elem"}})
            argv = ("nft", "-j", "list", kind, "inet", "dockwall", body["name"])
            answers[argv] = answer(json.dumps({"nftables": [{"metainfo": {}}, obj]}))
        elif kind not in {"metainfo", "table"}:
            terse.append(obj)
    answers[TERSE_ARGV] = answer(json.dumps({"nftables": [{"metainfo": {}}, *terse]}))
    return answers


def with_table(listing: str) -> FakeRunner:
    return FakeRunner(listed(listing))


def without_table() -> FakeRunner:
    other = {"table": {"family": "ip", "name": "filter", "handle": 1}}
    return FakeRunner({TERSE_ARGV: answer(json.dumps({"nftables": [other]}))})


def live_lines(listing: str, ruleset: Ruleset = RULESET) -> list[str]:
    desired = table_view(table_objects(ruleset))
    live = table_view(listing_objects(listing))
    return [f"{c.op} {c.where} | {c.text}" for c in table_changes(desired, live)]


def test_the_table_nft_prints_back_is_in_sync_with_its_render() -> None:
    assert live_lines(LISTING) == []


def test_a_narrowed_short_allowlist_changes_the_rules_that_use_it() -> None:
    assert WEB.egress is not None
    tls, dns = WEB.egress.allows
    narrower = replace(WEB, egress=Filter((replace(tls, peers=(net("203.0.113.0/24"),)), dns)))
    ruleset = replace(RULESET, guards=(RULESET.guards[0], narrower))
    assert live_lines(LISTING, ruleset) == [
        "remove chain out-web | ip daddr { 198.51.100.7, 203.0.113.0/24 } tcp dport 443 counter "
        "return",
        "remove chain out-web | ip daddr { 198.51.100.7, 203.0.113.0/24 } tcp dport 8000-8100 "
        "counter return",
        "add chain out-web | ip daddr 203.0.113.0/24 tcp dport 443 counter return",
        "add chain out-web | ip daddr 203.0.113.0/24 tcp dport 8000-8100 counter return",
    ]


def test_a_removed_peer_of_a_long_allowlist_is_one_removed_element() -> None:
    assert SETS_GUARD.ingress is not None
    short, long = SETS_GUARD.ingress.allows
    assert long.peers is not None
    fewer = replace(long, peers=tuple(p for p in long.peers if p != net("192.0.2.4/32")))
    guard = replace(SETS_GUARD, ingress=Filter((short, fewer)))
    ruleset = replace(SETS_RULESET, guards=(guard,))
    assert live_lines(SETS_LISTING, SETS_RULESET) == []
    assert live_lines(SETS_LISTING, ruleset) == ["remove set in-api-1-v4 | 192.0.2.4"]


def test_a_rule_added_by_hand_shows_as_removed() -> None:
    document = json.loads(LISTING)
    iifname = {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth9"}}
    rule = {"family": "inet", "table": "dockwall", "chain": "forward", "handle": 99}
    document["nftables"].append({"rule": {**rule, "expr": [iifname, {"accept": None}]}})
    assert live_lines(json.dumps(document)) == ["remove chain forward | iifname eth9 accept"]


def test_reordered_rules_are_not_in_sync() -> None:
    document = json.loads(LISTING)
    rules = [
        i for i, o in enumerate(document["nftables"]) if o.get("rule", {}).get("chain") == "forward"
    ]
    first, second = rules[2], rules[3]
    entries = document["nftables"]
    entries[first], entries[second] = entries[second], entries[first]
    assert sorted(live_lines(json.dumps(document))) == [
        "add chain forward | jump ingress",
        "remove chain forward | jump ingress",
    ]


def test_a_changed_hook_priority_is_a_change() -> None:
    document = json.loads(LISTING)
    for entry in document["nftables"]:
        if entry.get("chain", {}).get("name") == "input":
            entry["chain"]["prio"] = 0
    assert live_lines(json.dumps(document)) == [
        "remove chain input | type filter hook input priority 0; policy accept",
        "add chain input | type filter hook input priority -1; policy accept",
    ]


def test_interval_elements_compare_by_the_addresses_they_cover() -> None:
    document = json.loads(SETS_LISTING)
    for entry in document["nftables"]:
        if entry.get("set", {}).get("name") == "in-api-1-v4":
            entry["set"]["elem"] = [
                {"range": ["192.0.2.0", "192.0.2.0"]},
                *(f"192.0.2.{i * 2}" for i in range(1, 12)),
                {"prefix": {"addr": "198.51.100.128", "len": 25}},
                {"elem": {"val": {"prefix": {"addr": "198.51.100.0", "len": 25}}, "comment": "x"}},
            ]
    assert live_lines(json.dumps(document), SETS_RULESET) == []


def test_anonymous_sets_compare_by_the_addresses_they_cover() -> None:
    """nft prints 10.0.0.1 and 10.0.0.2/31 back as one range; any order or split is equal."""
    document = json.loads(SETS_LISTING)
    rules = [e["rule"] for e in document["nftables"] if e.get("rule", {}).get("chain") == "in-api"]
    assert rules[0]["expr"][0]["match"]["right"] == {"set": [{"range": ["10.0.0.1", "10.0.0.3"]}]}
    rules[0]["expr"][0]["match"]["right"] = {
        "set": [{"prefix": {"addr": "10.0.0.2", "len": 31}}, "10.0.0.1"]
    }
    assert live_lines(json.dumps(document), SETS_RULESET) == []
    rules[0]["expr"][0]["match"]["right"] = {"range": ["10.0.0.1", "10.0.0.2"]}
    assert live_lines(json.dumps(document), SETS_RULESET) == [
        "remove chain in-api | ip saddr { 10.0.0.1, 10.0.0.2 } tcp dport 80 counter return",
        "add chain in-api | ip saddr { 10.0.0.1, 10.0.0.2/31 } tcp dport 80 counter return",
    ]


def test_port_ranges_are_not_mistaken_for_addresses() -> None:
    document = json.loads(LISTING)
    rules = [e["rule"] for e in document["nftables"] if e.get("rule", {}).get("chain") == "out-web"]
    rules[1]["expr"][1]["match"]["right"] = {"range": [8000, 8101]}
    assert live_lines(json.dumps(document))[0] == (
        "remove chain out-web | ip daddr { 198.51.100.7, 203.0.113.0/24 } tcp dport 8000-8101 "
        "counter return"
    )


def test_counters_carry_the_kernel_values() -> None:
    document = json.loads(LISTING)
    for entry in document["nftables"]:
        rule = entry.get("rule", {})
        if rule.get("chain") == "default-in":
            rule["expr"][0]["counter"] = {"packets": 7, "bytes": 420}
    counted = rule_counters(listing_objects(json.dumps(document)))
    assert len(counted) == 12
    drop = next(c for c in counted if c.where == "chain default-in")
    assert (drop.family, drop.text, drop.packets, drop.bytes) == ("inet", "counter drop", 7, 420)


def test_unreadable_listing_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="nft printed JSON dockwall cannot read"):
        listing_objects("not json")


def test_plan_on_a_host_without_the_table_loads_everything_in_one_transaction() -> None:
    runner = without_table()
    plan = NftablesBackend(runner).plan(RULESET)
    assert plan.backend == "nftables"
    assert plan.changes[0].text == "table inet dockwall"
    assert all(c.op == "add" for c in plan.changes)
    [step] = plan.transaction.rules
    assert step.argv == ("nft", "-f", "-")
    assert step.payload.startswith(
        "add table inet dockwall\ndelete table inet dockwall\nadd table inet dockwall\n"
    )
    assert "flush" not in step.payload


def test_a_bridge_name_that_cannot_be_written_never_is() -> None:
    odd = Bridge("odd", 'br"0', (net("172.31.0.0/24"),))
    ruleset = replace(RULESET, bridges=(*RULESET.bridges, odd))
    [step] = NftablesBackend(without_table()).plan(ruleset).transaction.rules
    assert step.argv == ("nft", "-f", "-")
    assert 'br"0' not in step.payload


def test_what_the_script_cannot_say_safely_loads_as_json() -> None:
    commands = render(RULESET)
    step = load(commands, TableView())
    assert step.argv == ("nft", "-j", "-f", "-")
    assert json.loads(step.payload)["nftables"][1] == {
        "delete": {"table": {"family": "inet", "name": "dockwall"}}
    }


def test_plan_against_an_identical_table_is_in_sync_and_loads_nothing() -> None:
    plan = NftablesBackend(with_table(LISTING)).plan(RULESET)
    assert plan.in_sync
    assert plan.transaction == Transaction()


def test_apply_feeds_each_transaction_to_nft() -> None:
    backend = NftablesBackend(without_table())
    plan = backend.plan(RULESET)
    runner = FakeRunner()
    NftablesBackend(runner).apply(plan)
    assert runner.calls == [(["nft", "-f", "-"], plan.transaction.rules[0].payload)]


def test_reset_deletes_only_our_table_and_only_when_present() -> None:
    assert NftablesBackend(without_table()).plan_reset().in_sync
    plan = NftablesBackend(with_table(LISTING)).plan_reset()
    assert plan.changes[-1].text == "table inet dockwall"
    assert {c.op for c in plan.changes} == {"remove"}
    [step] = plan.transaction.rules
    table = {"table": {"family": "inet", "name": "dockwall"}}
    assert json.loads(step.payload) == {"nftables": [{"add": table}, {"delete": table}]}


def test_other_nft_failures_are_not_mistaken_for_a_missing_table() -> None:
    runner = FakeRunner({("nft",): answer(returncode=1, stderr="Error: Operation not permitted")})
    with pytest.raises(CommandError, match="Operation not permitted"):
        NftablesBackend(runner).plan(RULESET)


def tables(*names: tuple[str, str]) -> Result:
    entries = [{"table": {"family": f, "name": n, "handle": 1}} for f, n in names]
    return answer(json.dumps({"nftables": [{"metainfo": {}}, *entries]}))


def test_installed_and_counters_follow_the_live_table() -> None:
    names = tables(("inet", "dockwall"))
    runner = FakeRunner({("nft", "-j", "list", "tables"): names, **listed(LISTING)})
    assert NftablesBackend(runner).installed()
    foreign = json.dumps({"nftables": [{"table": {"family": "inet", "name": "dockwall"}}]})
    theirs = FakeRunner({("nft", "-j", "list", "tables"): names, TERSE_ARGV: answer(foreign)})
    assert not NftablesBackend(theirs).installed(), "a table of that name without our mark"
    assert NftablesBackend(theirs).plan_reset().in_sync, "is never deleted"
    with pytest.raises(DockwallError, match="not dockwall's"):
        NftablesBackend(theirs).plan(RULESET)
    assert not NftablesBackend(FakeRunner({("nft",): tables(("ip", "filter"))})).installed()
    assert NftablesBackend(without_table()).counters() == []
    assert len(NftablesBackend(with_table(LISTING)).counters()) == 12


@pytest.mark.parametrize(
    ("nft", "docker_user_rc", "expected"),
    [
        (tables(("ip", "docker-bridges"), ("ip6", "docker-bridges")), 1, True),
        (tables(("ip6", "docker-bridges")), 1, True),
        (tables(("ip", "docker-bridges")), 0, False),
        (tables(("ip", "filter"), ("ip", "nat")), 1, False),
        (answer(returncode=1, stderr="Operation not permitted"), 1, False),
    ],
)
def test_docker_uses_nftables(nft: Result, docker_user_rc: int, expected: bool) -> None:
    runner = FakeRunner({("nft",): nft, ("iptables",): answer(returncode=docker_user_rc)})
    assert docker_uses_nftables(runner) is expected


def test_missing_tools_mean_docker_does_not_use_nftables() -> None:
    missing = CommandError(["nft"], 127, "nft: not found")
    assert not docker_uses_nftables(FakeRunner({("nft",): missing, ("iptables",): missing}))


LISTING = marked(
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_s'
    'chema_version": 1}}, {"table": {"family": "inet", "name": "dockwall", "handle": 6}}, {"set'
    '": {"family": "inet", "name": "bridges", "table": "dockwall", "type": "ifname", "handle": '
    '9, "elem": ["docker0", "br-0123456789ab"]}}, {"set": {"family": "inet", "name": "intra", "'
    'table": "dockwall", "type": ["ifname", "ifname"], "handle": 10, "elem": [{"concat": ["dock'
    'er0", "docker0"]}, {"concat": ["br-0123456789ab", "br-0123456789ab"]}]}}, {"map": {"family'
    '": "inet", "name": "ingress-v4", "table": "dockwall", "type": ["ipv4_addr", "ifname"], "ha'
    'ndle": 11, "map": "verdict", "elem": [[{"concat": ["172.17.0.2", "docker0"]}, {"return": n'
    'ull}], [{"concat": ["172.30.0.2", "br-0123456789ab"]}, {"goto": {"target": "in-db"}}]]}}, '
    '{"map": {"family": "inet", "name": "ingress-v6", "table": "dockwall", "type": ["ipv6_addr"'
    ', "ifname"], "handle": 12, "map": "verdict", "elem": [[{"concat": ["2001:db8:d0c:1::2", "b'
    'r-0123456789ab"]}, {"goto": {"target": "in-db"}}]]}}, {"map": {"family": "inet", "name": "'
    'egress-v4", "table": "dockwall", "type": ["ipv4_addr", "ifname"], "handle": 13, "map": "ve'
    'rdict", "elem": [[{"concat": ["172.17.0.2", "docker0"]}, {"goto": {"target": "out-web"}}],'
    ' [{"concat": ["172.30.0.2", "br-0123456789ab"]}, {"return": null}]]}}, {"map": {"family": '
    '"inet", "name": "egress-v6", "table": "dockwall", "type": ["ipv6_addr", "ifname"], "handle'
    '": 14, "map": "verdict", "elem": [[{"concat": ["2001:db8:d0c:1::2", "br-0123456789ab"]}, {'
    '"return": null}]]}}, {"chain": {"family": "inet", "table": "dockwall", "name": "default-in'
    '", "handle": 1}}, {"chain": {"family": "inet", "table": "dockwall", "name": "in-db", "hand'
    'le": 2}}, {"chain": {"family": "inet", "table": "dockwall", "name": "ingress", "handle": 3'
    '}}, {"chain": {"family": "inet", "table": "dockwall", "name": "default-out", "handle": 4}}'
    ', {"chain": {"family": "inet", "table": "dockwall", "name": "out-web", "handle": 5}}, {"ch'
    'ain": {"family": "inet", "table": "dockwall", "name": "egress", "handle": 6}}, {"chain": {'
    '"family": "inet", "table": "dockwall", "name": "forward", "handle": 7, "type": "filter", "'
    'hook": "forward", "prio": -1, "policy": "accept"}}, {"chain": {"family": "inet", "table": '
    '"dockwall", "name": "input", "handle": 8, "type": "filter", "hook": "input", "prio": -1, "'
    'policy": "accept"}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "default-in'
    '", "handle": 15, "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"ru'
    'le": {"family": "inet", "table": "dockwall", "chain": "in-db", "handle": 16, "expr": [{"ma'
    'tch": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "19'
    '2.0.2.100"}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}'
    '}, {"match": {"op": "==", "left": {"ct": {"key": "proto-dst", "dir": "original"}}, "right"'
    ': 5432}}, {"counter": {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"rule": {"family"'
    ': "inet", "table": "dockwall", "chain": "in-db", "handle": 17, "expr": [{"match": {"op": "'
    '==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"add'
    'r": "2001:db8:100::", "len": 64}}}}, {"match": {"op": "==", "left": {"meta": {"key": "l4pr'
    'oto"}}, "right": "tcp"}}, {"match": {"op": "==", "left": {"ct": {"key": "proto-dst", "dir"'
    ': "original"}}, "right": 5432}}, {"counter": {"packets": 0, "bytes": 0}}, {"return": null}'
    ']}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "in-db", "handle": 18, "exp'
    'r": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "icmp"}}, {"cou'
    'nter": {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"rule": {"family": "inet", "tabl'
    'e": "dockwall", "chain": "in-db", "handle": 19, "expr": [{"match": {"op": "==", "left": {"'
    'meta": {"key": "l4proto"}}, "right": "ipv6-icmp"}}, {"counter": {"packets": 0, "bytes": 0}'
    '}, {"return": null}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "in-db",'
    ' "handle": 20, "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"rule'
    '": {"family": "inet", "table": "dockwall", "chain": "ingress", "handle": 21, "expr": [{"vm'
    'ap": {"key": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"meta": {"key'
    '": "oifname"}}]}, "data": "@ingress-v4"}}]}}, {"rule": {"family": "inet", "table": "dockwa'
    'll", "chain": "ingress", "handle": 22, "expr": [{"vmap": {"key": {"concat": [{"payload": {'
    '"protocol": "ip6", "field": "daddr"}}, {"meta": {"key": "oifname"}}]}, "data": "@ingress-v'
    '6"}}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "ingress", "handle": 23'
    ', "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "@bridges'
    '"}}, {"goto": {"target": "default-in"}}]}}, {"rule": {"family": "inet", "table": "dockwall'
    '", "chain": "ingress", "handle": 24, "expr": [{"match": {"op": "==", "left": {"meta": {"ke'
    'y": "oifname"}}, "right": "br-*"}}, {"match": {"op": "!=", "left": {"meta": {"key": "iifna'
    'me"}}, "right": "br-*"}}, {"goto": {"target": "default-in"}}]}}, {"rule": {"family": "inet'
    '", "table": "dockwall", "chain": "default-out", "handle": 25, "expr": [{"match": {"op": "='
    '=", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}, {"counter":'
    ' {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"rule": {"family": "inet", "table": "d'
    'ockwall", "chain": "default-out", "handle": 26, "expr": [{"counter": {"packets": 0, "bytes'
    '": 0}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "out-'
    'web", "handle": 28, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip",'
    ' "field": "daddr"}}, "right": {"set": ["198.51.100.7", {"prefix": {"addr": "203.0.113.0", '
    '"len": 24}}]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "'
    'dport"}}, "right": 443}}, {"counter": {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"'
    'rule": {"family": "inet", "table": "dockwall", "chain": "out-web", "handle": 30, "expr": ['
    '{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right":'
    ' {"set": ["198.51.100.7", {"prefix": {"addr": "203.0.113.0", "len": 24}}]}}}, {"match": {"'
    'op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"range": '
    '[8000, 8100]}}}, {"counter": {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"rule": {"'
    'family": "inet", "table": "dockwall", "chain": "out-web", "handle": 31, "expr": [{"match":'
    ' {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}, {'
    '"counter": {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"rule": {"family": "inet", "'
    'table": "dockwall", "chain": "out-web", "handle": 32, "expr": [{"counter": {"packets": 0, '
    '"bytes": 0}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain":'
    ' "egress", "handle": 33, "expr": [{"vmap": {"key": {"concat": [{"payload": {"protocol": "i'
    'p", "field": "saddr"}}, {"meta": {"key": "iifname"}}]}, "data": "@egress-v4"}}]}}, {"rule"'
    ': {"family": "inet", "table": "dockwall", "chain": "egress", "handle": 34, "expr": [{"vmap'
    '": {"key": {"concat": [{"payload": {"protocol": "ip6", "field": "saddr"}}, {"meta": {"key"'
    ': "iifname"}}]}, "data": "@egress-v6"}}]}}, {"rule": {"family": "inet", "table": "dockwall'
    '", "chain": "egress", "handle": 35, "expr": [{"match": {"op": "==", "left": {"meta": {"key'
    '": "iifname"}}, "right": "@bridges"}}, {"goto": {"target": "default-out"}}]}}, {"rule": {"'
    'family": "inet", "table": "dockwall", "chain": "egress", "handle": 36, "expr": [{"match": '
    '{"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "br-*"}}, {"match": {"op": "!='
    '", "left": {"meta": {"key": "oifname"}}, "right": "br-*"}}, {"goto": {"target": "default-o'
    'ut"}}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "forward", "handle": 3'
    '7, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["establishe'
    'd", "related"]}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "dockwall", "c'
    'hain": "forward", "handle": 38, "expr": [{"match": {"op": "==", "left": {"concat": [{"meta'
    '": {"key": "iifname"}}, {"meta": {"key": "oifname"}}]}, "right": "@intra"}}, {"accept": nu'
    'll}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "forward", "handle": 39,'
    ' "expr": [{"jump": {"target": "ingress"}}]}}, {"rule": {"family": "inet", "table": "dockwa'
    'll", "chain": "forward", "handle": 40, "expr": [{"jump": {"target": "egress"}}]}}, {"rule"'
    ': {"family": "inet", "table": "dockwall", "chain": "input", "handle": 41, "expr": [{"match'
    '": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {'
    '"accept": null}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "input", "ha'
    'ndle": 43, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "icmpv6", "fie'
    'ld": "type"}}, "right": {"set": ["nd-router-solicit", "nd-router-advert", "nd-neighbor-sol'
    'icit", "nd-neighbor-advert"]}}}, {"accept": null}]}}, {"rule": {"family": "inet", "table":'
    ' "dockwall", "chain": "input", "handle": 44, "expr": [{"jump": {"target": "egress"}}]}}]}'
)


PEERS_RULESET = Ruleset(RULESET.bridges[1:], (), None, None, isolate_peers=True, peers=PEERS)

# Peers of every size: adjacent prefixes nft may merge, a few in an anonymous set, many in
# a named interval set.
SETS_GUARD = Guard(
    key="c0ffee000003",
    name="api",
    origin="test",
    endpoints=(Endpoint("docker0", ip("172.17.0.3")),),
    ingress=Filter(
        (
            Allow(
                peers=(net("10.0.0.1/32"), net("10.0.0.2/31"), net("2001:db8:1::/48")),
                ports=(PortMatch("tcp", 80, 80),),
            ),
            Allow(
                peers=(
                    *(net(f"192.0.2.{i * 2}/32") for i in range(12)),
                    *(net(n) for n in ("198.51.100.0/25", "198.51.100.128/25")),
                    *(net(n) for n in ("2001:db8:2::/48", "2001:db8:3::/48")),
                ),
                ports=(PortMatch("tcp", 443, 443),),
            ),
        )
    ),
    egress=None,
)
SETS_RULESET = Ruleset(RULESET.bridges[:1], (SETS_GUARD,), None, None)


def test_isolated_peers_table_nft_prints_back_is_in_sync_with_its_render() -> None:
    assert live_lines(PEERS_LISTING, PEERS_RULESET) == []
    document = json.loads(PEERS_LISTING)
    for entry in document["nftables"]:
        if entry.get("set", {}).get("name") == "peers-v4-ports":
            removed = " . ".join(str(v) for v in entry["set"]["elem"].pop(0)["concat"])
    assert live_lines(json.dumps(document), PEERS_RULESET) == [
        f"add set peers-v4-ports | {removed}"
    ]


# `nft -j list table inet dockwall` in a lab after loading the render of PEERS_RULESET.
PEERS_LISTING = marked(
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_sch'
    'ema_version": 1}}, {"table": {"family": "inet", "name": "dockwall", "handle": 8}}, {"set": {'
    '"family": "inet", "name": "bridges", "table": "dockwall", "type": "ifname", "handle": 6, "el'
    'em": ["br-0123456789ab"]}}, {"set": {"family": "inet", "name": "intra", "table": "dockwall",'
    ' "type": ["ifname", "ifname"], "handle": 7, "elem": [{"concat": ["br-0123456789ab", "br-0123'
    '456789ab"]}]}}, {"map": {"family": "inet", "name": "ingress-v4", "table": "dockwall", "type"'
    ': ["ipv4_addr", "ifname"], "handle": 8, "map": "verdict"}}, {"map": {"family": "inet", "name'
    '": "ingress-v6", "table": "dockwall", "type": ["ipv6_addr", "ifname"], "handle": 9, "map": "'
    'verdict"}}, {"map": {"family": "inet", "name": "egress-v4", "table": "dockwall", "type": ["i'
    'pv4_addr", "ifname"], "handle": 10, "map": "verdict"}}, {"map": {"family": "inet", "name": "'
    'egress-v6", "table": "dockwall", "type": ["ipv6_addr", "ifname"], "handle": 11, "map": "verd'
    'ict"}}, {"set": {"family": "inet", "name": "peers-v4", "table": "dockwall", "type": ["ipv4_a'
    'ddr", "ipv4_addr"], "handle": 12, "elem": [{"concat": ["172.30.0.5", "172.30.0.2"]}]}}, {"se'
    't": {"family": "inet", "name": "peers-v4-ports", "table": "dockwall", "type": ["ipv4_addr", '
    '"ipv4_addr", "inet_proto", "inet_service"], "handle": 13, "elem": [{"concat": ["172.30.0.4",'
    ' "172.30.0.2", "udp", 53]}, {"concat": ["172.30.0.3", "172.30.0.2", "tcp", 5432]}, {"concat"'
    ': ["172.30.0.4", "172.30.0.2", "tcp", 5432]}]}}, {"set": {"family": "inet", "name": "peers-v'
    '6-ports", "table": "dockwall", "type": ["ipv6_addr", "ipv6_addr", "inet_proto", "inet_servic'
    'e"], "handle": 14, "elem": [{"concat": ["2001:db8:d0c:1::3", "2001:db8:d0c:1::2", "tcp", 543'
    '2]}]}}, {"set": {"family": "inet", "name": "peers-v6-0", "table": "dockwall", "type": ["ipv6'
    '_addr", "ipv6_addr"], "handle": 15, "elem": [{"concat": ["2001:db8:d0c:1::3", "2001:db8:d0c:'
    '1::2"]}]}}, {"set": {"family": "inet", "name": "peers-v6-1", "table": "dockwall", "type": ["'
    'ipv6_addr", "ipv6_addr"], "handle": 16, "elem": [{"concat": ["2001:db8:d0c:1::3", "2001:db8:'
    'd0c:1::2"]}]}}, {"chain": {"family": "inet", "table": "dockwall", "name": "ingress", "handle'
    '": 1}}, {"chain": {"family": "inet", "table": "dockwall", "name": "egress", "handle": 2}}, {'
    '"chain": {"family": "inet", "table": "dockwall", "name": "peers", "handle": 3}}, {"chain": {'
    '"family": "inet", "table": "dockwall", "name": "forward", "handle": 4, "type": "filter", "ho'
    'ok": "forward", "prio": -1, "policy": "accept"}}, {"chain": {"family": "inet", "table": "doc'
    'kwall", "name": "input", "handle": 5, "type": "filter", "hook": "input", "prio": -1, "policy'
    '": "accept"}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "ingress", "handle"'
    ': 17, "expr": [{"vmap": {"key": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"}'
    '}, {"meta": {"key": "oifname"}}]}, "data": "@ingress-v4"}}]}}, {"rule": {"family": "inet", "'
    'table": "dockwall", "chain": "ingress", "handle": 18, "expr": [{"vmap": {"key": {"concat": ['
    '{"payload": {"protocol": "ip6", "field": "daddr"}}, {"meta": {"key": "oifname"}}]}, "data": '
    '"@ingress-v6"}}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "egress", "han'
    'dle": 19, "expr": [{"vmap": {"key": {"concat": [{"payload": {"protocol": "ip", "field": "sad'
    'dr"}}, {"meta": {"key": "iifname"}}]}, "data": "@egress-v4"}}]}}, {"rule": {"family": "inet"'
    ', "table": "dockwall", "chain": "egress", "handle": 20, "expr": [{"vmap": {"key": {"concat":'
    ' [{"payload": {"protocol": "ip6", "field": "saddr"}}, {"meta": {"key": "iifname"}}]}, "data"'
    ': "@egress-v6"}}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "peers", "han'
    'dle": 22, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "icmpv6", "field"'
    ': "type"}}, "right": {"set": ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit"'
    ', "nd-neighbor-advert"]}}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "dockw'
    'all", "chain": "peers", "handle": 23, "expr": [{"match": {"op": "==", "left": {"concat": [{"'
    'payload": {"protocol": "ip", "field": "saddr"}}, {"payload": {"protocol": "ip", "field": "da'
    'ddr"}}]}, "right": "@peers-v4"}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]'
    '}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "peers", "handle": 24, "expr":'
    ' [{"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "saddr"'
    '}}, {"payload": {"protocol": "ip", "field": "daddr"}}, {"meta": {"key": "l4proto"}}, {"paylo'
    'ad": {"protocol": "th", "field": "dport"}}]}, "right": "@peers-v4-ports"}}, {"counter": {"pa'
    'ckets": 0, "bytes": 0}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "dockwall'
    '", "chain": "peers", "handle": 25, "expr": [{"match": {"op": "==", "left": {"concat": [{"pay'
    'load": {"protocol": "ip6", "field": "saddr"}}, {"payload": {"protocol": "ip6", "field": "dad'
    'dr"}}, {"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]}, "r'
    'ight": "@peers-v6-ports"}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}}, {"'
    'rule": {"family": "inet", "table": "dockwall", "chain": "peers", "handle": 26, "expr": [{"ma'
    'tch": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip6", "field": "saddr"}}, {'
    '"payload": {"protocol": "ip6", "field": "daddr"}}]}, "right": "@peers-v6-0"}}, {"match": {"o'
    'p": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"range": [80'
    '00, 8100]}}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}}, {"rule": {"famil'
    'y": "inet", "table": "dockwall", "chain": "peers", "handle": 27, "expr": [{"match": {"op": "'
    '==", "left": {"concat": [{"payload": {"protocol": "ip6", "field": "saddr"}}, {"payload": {"p'
    'rotocol": "ip6", "field": "daddr"}}]}, "right": "@peers-v6-1"}}, {"match": {"op": "==", "lef'
    't": {"meta": {"key": "l4proto"}}, "right": "ipv6-icmp"}}, {"counter": {"packets": 0, "bytes"'
    ': 0}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "peers'
    '", "handle": 28, "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"rule'
    '": {"family": "inet", "table": "dockwall", "chain": "forward", "handle": 29, "expr": [{"matc'
    'h": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"'
    'accept": null}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "forward", "han'
    'dle": 30, "expr": [{"match": {"op": "==", "left": {"concat": [{"meta": {"key": "iifname"}}, '
    '{"meta": {"key": "oifname"}}]}, "right": "@intra"}}, {"goto": {"target": "peers"}}]}}, {"rul'
    'e": {"family": "inet", "table": "dockwall", "chain": "forward", "handle": 31, "expr": [{"jum'
    'p": {"target": "ingress"}}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "fo'
    'rward", "handle": 32, "expr": [{"jump": {"target": "egress"}}]}}, {"rule": {"family": "inet"'
    ', "table": "dockwall", "chain": "input", "handle": 33, "expr": [{"match": {"op": "in", "left'
    '": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}}, {"r'
    'ule": {"family": "inet", "table": "dockwall", "chain": "input", "handle": 35, "expr": [{"mat'
    'ch": {"op": "==", "left": {"payload": {"protocol": "icmpv6", "field": "type"}}, "right": {"s'
    'et": ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert"]}'
    '}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "input", '
    '"handle": 36, "expr": [{"jump": {"target": "egress"}}]}}]}'
)


# `nft -j list table inet dockwall` in a lab after loading the render of SETS_RULESET.
SETS_LISTING = marked(
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_sch'
    'ema_version": 1}}, {"table": {"family": "inet", "name": "dockwall", "handle": 10}}, {"set": '
    '{"family": "inet", "name": "bridges", "table": "dockwall", "type": "ifname", "handle": 6, "e'
    'lem": ["docker0"]}}, {"set": {"family": "inet", "name": "intra", "table": "dockwall", "type"'
    ': ["ifname", "ifname"], "handle": 7, "elem": [{"concat": ["docker0", "docker0"]}]}}, {"map":'
    ' {"family": "inet", "name": "ingress-v4", "table": "dockwall", "type": ["ipv4_addr", "ifname'
    '"], "handle": 8, "map": "verdict", "elem": [[{"concat": ["172.17.0.3", "docker0"]}, {"goto":'
    ' {"target": "in-api"}}]]}}, {"map": {"family": "inet", "name": "ingress-v6", "table": "dockw'
    'all", "type": ["ipv6_addr", "ifname"], "handle": 9, "map": "verdict"}}, {"set": {"family": "'
    'inet", "name": "in-api-1-v4", "table": "dockwall", "type": "ipv4_addr", "handle": 10, "flags'
    '": ["interval"], "elem": ["192.0.2.0", "192.0.2.2", "192.0.2.4", "192.0.2.6", "192.0.2.8", "'
    '192.0.2.10", "192.0.2.12", "192.0.2.14", "192.0.2.16", "192.0.2.18", "192.0.2.20", "192.0.2.'
    '22", {"prefix": {"addr": "198.51.100.0", "len": 24}}]}}, {"map": {"family": "inet", "name": '
    '"egress-v4", "table": "dockwall", "type": ["ipv4_addr", "ifname"], "handle": 11, "map": "ver'
    'dict", "elem": [[{"concat": ["172.17.0.3", "docker0"]}, {"return": null}]]}}, {"map": {"fami'
    'ly": "inet", "name": "egress-v6", "table": "dockwall", "type": ["ipv6_addr", "ifname"], "han'
    'dle": 12, "map": "verdict"}}, {"chain": {"family": "inet", "table": "dockwall", "name": "in-'
    'api", "handle": 1}}, {"chain": {"family": "inet", "table": "dockwall", "name": "ingress", "h'
    'andle": 2}}, {"chain": {"family": "inet", "table": "dockwall", "name": "egress", "handle": 3'
    '}}, {"chain": {"family": "inet", "table": "dockwall", "name": "forward", "handle": 4, "type"'
    ': "filter", "hook": "forward", "prio": -1, "policy": "accept"}}, {"chain": {"family": "inet"'
    ', "table": "dockwall", "name": "input", "handle": 5, "type": "filter", "hook": "input", "pri'
    'o": -1, "policy": "accept"}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "in-'
    'api", "handle": 14, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "'
    'field": "saddr"}}, "right": {"set": [{"range": ["10.0.0.1", "10.0.0.3"]}]}}}, {"match": {"op'
    '": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"counte'
    'r": {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"rule": {"family": "inet", "table": "'
    'dockwall", "chain": "in-api", "handle": 15, "expr": [{"match": {"op": "==", "left": {"payloa'
    'd": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": "2001:db8:1::", "le'
    'n": 48}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}'
    '}, "right": 80}}, {"counter": {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"rule": {"f'
    'amily": "inet", "table": "dockwall", "chain": "in-api", "handle": 16, "expr": [{"match": {"o'
    'p": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@in-api-1-v4"'
    '}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "righ'
    't": 443}}, {"counter": {"packets": 0, "bytes": 0}}, {"return": null}]}}, {"rule": {"family":'
    ' "inet", "table": "dockwall", "chain": "in-api", "handle": 17, "expr": [{"match": {"op": "=='
    '", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": '
    '"2001:db8:2::", "len": 47}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp"'
    ', "field": "dport"}}, "right": 443}}, {"counter": {"packets": 0, "bytes": 0}}, {"return": nu'
    'll}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "in-api", "handle": 18, "e'
    'xpr": [{"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"rule": {"family": "inet'
    '", "table": "dockwall", "chain": "ingress", "handle": 19, "expr": [{"vmap": {"key": {"concat'
    '": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"meta": {"key": "oifname"}}]}, "data'
    '": "@ingress-v4"}}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "ingress", '
    '"handle": 20, "expr": [{"vmap": {"key": {"concat": [{"payload": {"protocol": "ip6", "field":'
    ' "daddr"}}, {"meta": {"key": "oifname"}}]}, "data": "@ingress-v6"}}]}}, {"rule": {"family": '
    '"inet", "table": "dockwall", "chain": "egress", "handle": 21, "expr": [{"vmap": {"key": {"co'
    'ncat": [{"payload": {"protocol": "ip", "field": "saddr"}}, {"meta": {"key": "iifname"}}]}, "'
    'data": "@egress-v4"}}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "egress"'
    ', "handle": 22, "expr": [{"vmap": {"key": {"concat": [{"payload": {"protocol": "ip6", "field'
    '": "saddr"}}, {"meta": {"key": "iifname"}}]}, "data": "@egress-v6"}}]}}, {"rule": {"family":'
    ' "inet", "table": "dockwall", "chain": "forward", "handle": 23, "expr": [{"match": {"op": "i'
    'n", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null'
    '}]}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "forward", "handle": 24, "ex'
    'pr": [{"match": {"op": "==", "left": {"concat": [{"meta": {"key": "iifname"}}, {"meta": {"ke'
    'y": "oifname"}}]}, "right": "@intra"}}, {"accept": null}]}}, {"rule": {"family": "inet", "ta'
    'ble": "dockwall", "chain": "forward", "handle": 25, "expr": [{"jump": {"target": "ingress"}}'
    ']}}, {"rule": {"family": "inet", "table": "dockwall", "chain": "forward", "handle": 26, "exp'
    'r": [{"jump": {"target": "egress"}}]}}, {"rule": {"family": "inet", "table": "dockwall", "ch'
    'ain": "input", "handle": 27, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}'
    '}, "right": ["established", "related"]}}, {"accept": null}]}}, {"rule": {"family": "inet", "'
    'table": "dockwall", "chain": "input", "handle": 29, "expr": [{"match": {"op": "==", "left": '
    '{"payload": {"protocol": "icmpv6", "field": "type"}}, "right": {"set": ["nd-router-solicit",'
    ' "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert"]}}}, {"accept": null}]}}, {'
    '"rule": {"family": "inet", "table": "dockwall", "chain": "input", "handle": 30, "expr": [{"j'
    'ump": {"target": "egress"}}]}}]}'
)
