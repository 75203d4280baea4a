"""The iptables backend's ipset sets for long address lists, with a fake runner (no root)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from dockwall.backends.iptables import IptablesBackend, ipsets
from dockwall.backends.iptables.basechains import BaseChains
from dockwall.backends.iptables.detect import Family
from dockwall.backends.iptables.ipsets import DestroySets, set_for
from dockwall.backends.iptables.render import render
from dockwall.backends.iptables.setread import parse_headers, parse_members, read_headers
from dockwall.backends.transaction import Load, Transaction
from dockwall.compile.ir import Allow, Endpoint, Filter, Guard, PortMatch, Ruleset
from dockwall.errors import CommandError
from dockwall.model.state import Bridge, Network

from .fakes import FakeRunner
from .test_iptables_backend import DOCKER_V4, DOCKER_V6, NFT, live_after_apply

BRIDGE = Bridge("shop", "br-5b3cfa957ae6", (ipaddress.ip_network("172.30.0.0/24"),))
ENDPOINTS = (
    Endpoint(BRIDGE.interface, ipaddress.ip_address("172.30.0.2")),
    Endpoint(BRIDGE.interface, ipaddress.ip_address("2001:db8:d0c:1::2")),
)
PG = PortMatch("tcp", 5432, 5432)


def v4(count: int, start: int = 0) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(f"198.18.{i // 256}.{i % 256}/32") for i in range(start, start + count)
    )


def v6(count: int) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(f"2001:db8:100:{i:x}::/64") for i in range(count))


def rules_for(peers: tuple[Network, ...], egress: tuple[Network, ...] | None = None) -> Ruleset:
    ingress = Filter((Allow(peers=peers, ports=(PG,), original=True),))
    out = (
        None
        if egress is None
        else Filter((Allow(peers=egress, ports=(PortMatch("tcp", 443, 443),)),))
    )
    guard = Guard("dddddddddddd", "db", "test", ENDPOINTS, ingress, out)
    return Ruleset((BRIDGE,), (guard,), None, None)


def db_chain(ruleset: Ruleset, family: Family, direction: str = "I") -> list[str]:
    """The chain's rules after the mark every chain of ours starts with."""
    mark, *rules = render(ruleset, family).chains[f"DOCKWALL-{direction}-dddddddddddd"]
    assert mark == "-m comment --comment dockwall-chain"
    return rules


def test_more_than_eight_addresses_become_one_set_match_in_iptables_save_order() -> None:
    ruleset = rules_for(v4(9) + v6(2), egress=v4(20, start=100))
    desired = render(ruleset, "ipv4")
    [inbound, outbound] = desired.sets.values()
    assert db_chain(ruleset, "ipv4") == [
        f"-p tcp -m set --match-set {inbound.name} src "
        "-m conntrack --ctorigdstport 5432 --ctdir ORIGINAL -j RETURN",
        "-j DROP",
    ]
    assert db_chain(ruleset, "ipv4", "E") == [
        f"-p tcp -m set --match-set {outbound.name} dst -m tcp --dport 443 -j RETURN",
        "-j DROP",
    ]
    assert inbound.family == "ipv4" and len(inbound.members) == 9
    assert inbound.name.startswith("dockwall-") and len(inbound.name) <= 31
    v6_rules = db_chain(ruleset, "ipv6")
    assert len(v6_rules) == 3 and v6_rules[0].startswith("-s 2001:db8:100::/64 -p tcp")
    assert render(ruleset, "ipv6").sets == {}


def test_eight_addresses_stay_rules_and_any_protocol_set_match_has_no_proto() -> None:
    assert render(rules_for(v4(8)), "ipv4").sets == {}
    guard = Guard("k", "k", "t", ENDPOINTS, Filter((Allow(peers=v6(12)),)), None)
    desired = render(Ruleset((BRIDGE,), (guard,), None, None), "ipv6")
    [found] = desired.sets.values()
    assert desired.chains["DOCKWALL-I-k"][1] == f"-m set --match-set {found.name} src -j RETURN"
    assert found.kind == "hash:net family inet6"


def test_a_list_with_slash_zero_stays_rules() -> None:
    peers = (*v4(9), ipaddress.ip_network("0.0.0.0/0"))
    assert render(rules_for(peers), "ipv4").sets == {}


def test_set_names_follow_family_and_members_only() -> None:
    assert set_for("ipv4", v4(9)) == set_for("ipv4", tuple(reversed(v4(9))))
    assert set_for("ipv4", v4(9)).name != set_for("ipv4", v4(10)).name
    assert set_for("ipv4", v4(9)).name != set_for("ipv6", v4(9)).name


def ipset_save(*sets: ipsets.IpSet) -> str:
    """As `ipset save` prints: host addresses without /32, extra create options."""
    lines = [
        "create crowdsec-blacklists hash:ip family inet hashsize 1024 maxelem 65536",
        "add crowdsec-blacklists 203.0.113.9",
    ]
    for found in sets:
        lines.append(
            f"create {found.name} {found.kind} hashsize 1024 maxelem 65536 "
            "bucketsize 12 initval 0x1234"
        )
        lines += [f"add {found.name} {m.removesuffix('/32')}" for m in found.members]
    return "\n".join([*lines, ""])


def ipset_headers(saved: str) -> str:
    """`ipset list -t` of the sets in `ipset save` text: headers and counts, no members."""
    blocks: list[str] = []
    counts: dict[str, int] = {}
    for line in saved.splitlines():
        if line.startswith("add "):
            counts[line.split()[1]] = counts.get(line.split()[1], 0) + 1
    for line in saved.splitlines():
        if line.startswith("create "):
            _, name, kind, *options = line.split()
            blocks.append(
                f"Name: {name}\nType: {kind}\nRevision: 7\nHeader: {' '.join(options)}\n"
                f"Size in memory: 1240\nReferences: 1\nNumber of entries: {counts.get(name, 0)}\n"
            )
    return "\n".join(blocks)


def saved_sets(saved: str, names: set[str]) -> str:
    """`ipset save NAME` of each of `names`, as one batch prints them."""
    return "".join(f"{line}\n" for line in saved.splitlines() if line.split()[1] in names)


def is_read(argv: list[str], payload: str | None) -> bool:
    lines = (payload or "").splitlines()
    batch = (
        argv == ["ipset", "restore"] and bool(lines) and all(x.startswith("save ") for x in lines)
    )
    return batch or argv[:3] == ["ipset", "list", "-t"]


class Host:
    """A fake host: iptables-save texts, `ipset save` text, and a script of failures."""

    def __init__(self, v4_text: str, v6_text: str, saved: str = "", fail: str = "") -> None:
        self.v4, self.v6, self.saved, self.fail = v4_text, v6_text, saved, fail
        self.names = {line.split()[1] for line in saved.splitlines() if line.startswith("create")}
        self.runner = FakeRunner(self.respond)

    def respond(self, argv: list[str], payload: str | None) -> tuple[int, str]:
        if argv[0] == self.fail:
            return 1, f"{argv[0]}: line 3 failed"
        if argv[0] == "iptables-nft-save":
            return 0, self.v4
        if argv[0] == "ip6tables-nft-save":
            return 0, self.v6
        if argv[:3] == ["ipset", "list", "-t"]:
            return 0, ipset_headers(self.saved)
        if is_read(argv, payload):
            wanted = {line.split()[1] for line in (payload or "").splitlines()}
            return 0, saved_sets(self.saved, wanted)
        if argv[:3] == ["ipset", "list", "-n"]:
            return 0, "\n".join(sorted(self.names))
        if argv[0] == "ipset":
            for line in (payload or "").splitlines():
                verb, name = line.split()[:2]
                if verb == "create":
                    self.names.add(name)
                elif verb == "destroy":
                    self.names.discard(name)
        return 0, ""

    def commands(self) -> list[str]:
        return [
            " ".join(argv)
            for argv, payload in self.runner.calls
            if not is_read(argv, payload) and "save" not in argv[0] and argv[0] != "nft"
        ]


def test_fresh_host_loads_sets_before_the_rules_that_name_them() -> None:
    ruleset = rules_for(v4(9))
    host = Host(DOCKER_V4, DOCKER_V6)
    backend = IptablesBackend(host.runner, NFT)
    plan = backend.plan(ruleset)
    [wanted] = render(ruleset, "ipv4").sets.values()
    create, *prepare = plan.transaction.before
    v4_load, v6_load = plan.transaction.rules
    assert isinstance(create, Load) and create.argv == ("ipset", "-exist", "restore")
    assert create.payload.splitlines()[:2] == [
        f"create {wanted.name} hash:net family inet maxelem 65536",
        f"add {wanted.name} 198.18.0.0/32",
    ]
    assert prepare == [BaseChains("prepare", "ipv4"), BaseChains("prepare", "ipv6")]
    assert plan.transaction.fail == (DestroySets((wanted.name,)),), "the new set, on failure"
    assert plan.transaction.after == (BaseChains("tidy", "ipv4"), BaseChains("tidy", "ipv6"))
    assert f"--match-set {wanted.name} src" in v4_load.payload
    assert v6_load.argv[0] == "ip6tables-nft-restore"
    assert plan.changes[0].text == "(new set hash:net family inet, 9 entries)"
    assert plan.changes[0].where == f"ipset {wanted.name}"
    assert [c.text for c in plan.changes[1:10]] == list(wanted.members)
    backend.apply(plan)
    assert host.commands() == [
        "ipset -exist restore",
        "iptables-nft-restore --noflush",
        "ip6tables-nft-restore --noflush",
    ]


def test_plan_is_in_sync_when_rules_and_sets_are_live() -> None:
    ruleset = rules_for(v4(9) + v6(9))
    sets = [*render(ruleset, "ipv4").sets.values(), *render(ruleset, "ipv6").sets.values()]
    host = Host(
        live_after_apply(ruleset, "ipv4"), live_after_apply(ruleset, "ipv6"), ipset_save(*sets)
    )
    plan = IptablesBackend(host.runner, NFT).plan(ruleset)
    assert plan.changes == () and plan.transaction == Transaction()


def test_a_changed_list_is_a_new_set_and_the_old_one_goes_after_the_rules() -> None:
    old, new = rules_for(v4(9)), rules_for(v4(10))
    [old_set] = render(old, "ipv4").sets.values()
    [new_set] = render(new, "ipv4").sets.values()
    host = Host(live_after_apply(old, "ipv4"), live_after_apply(old, "ipv6"), ipset_save(old_set))
    backend = IptablesBackend(host.runner, NFT)
    plan = backend.plan(new)
    [create, prepare] = plan.transaction.before
    assert isinstance(create, Load) and create.argv[0] == "ipset"
    assert prepare == BaseChains("prepare", "ipv4"), "only the family that changes"
    assert [t.argv[0] for t in plan.transaction.rules] == ["iptables-nft-restore"]
    assert plan.transaction.after[0] == DestroySets((old_set.name,))
    lines = [(c.op, c.where, c.text) for c in plan.changes]
    assert lines[:2] == [
        ("add", f"ipset {new_set.name}", "(new set hash:net family inet, 10 entries)"),
        ("add", f"ipset {new_set.name}", "198.18.0.9/32"),
    ], "only the member that differs from the set it replaces"
    assert lines[-1] == ("remove", f"ipset {old_set.name}", "(set destroyed, 9 entries)")
    backend.apply(plan)
    assert host.commands() == [
        "ipset -exist restore",
        "iptables-nft-restore --noflush",
        "ipset list -n",
        "ipset restore",
    ]
    assert old_set.name not in host.names and "crowdsec-blacklists" in host.names


def test_an_altered_set_is_refilled_under_a_temporary_name_and_swapped_in() -> None:
    ruleset = rules_for(v4(9))
    [wanted] = render(ruleset, "ipv4").sets.values()
    altered = replace(wanted, members=wanted.members[:-1])
    host = Host(
        live_after_apply(ruleset, "ipv4"), live_after_apply(ruleset, "ipv6"), ipset_save(altered)
    )
    plan = IptablesBackend(host.runner, NFT).plan(ruleset)
    [create] = plan.transaction.before
    assert isinstance(create, Load) and plan.transaction.rules == ()
    temp = f"{wanted.name}-t"
    payload = create.payload.splitlines()
    assert payload[0].startswith(f"create {temp} hash:net family inet")
    assert payload[-2:] == [f"swap {temp} {wanted.name}", f"destroy {temp}"]
    assert plan.transaction.fail == (), "a set rules may use is never destroyed on failure"
    assert [(c.op, c.text) for c in plan.changes] == [
        ("add", "(set refilled hash:net family inet, 9 entries)"),
        ("add", wanted.members[-1]),
    ]


def test_failed_family_rolls_back_the_other_and_destroys_the_new_sets() -> None:
    ruleset = rules_for(v4(9))
    [wanted] = render(ruleset, "ipv4").sets.values()
    host = Host(DOCKER_V4, DOCKER_V6, fail="ip6tables-nft-restore")
    backend = IptablesBackend(host.runner, NFT)
    with pytest.raises(CommandError, match="line 3 failed"):
        backend.apply(backend.plan(ruleset))
    commands = host.commands()
    assert commands[0] == "ipset -exist restore"
    assert commands.count("iptables-nft-restore --noflush") == 2, "the load, then its undo"
    assert commands[-2:] == ["ipset list -n", "ipset restore"]
    assert wanted.name not in host.names


def test_failed_set_load_stops_before_any_rule_changes() -> None:
    host = Host(DOCKER_V4, DOCKER_V6, fail="ipset")
    backend = IptablesBackend(host.runner, NFT)
    plan = backend.plan(rules_for(v4(9)))
    with pytest.raises(CommandError):
        backend.apply(plan)
    assert not [c for c in host.commands() if "restore --noflush" in c]


def test_reset_destroys_only_our_sets_after_the_rules_are_gone() -> None:
    ruleset = rules_for(v4(9))
    [ours] = render(ruleset, "ipv4").sets.values()
    stale = set_for("ipv6", v6(9))
    host = Host(
        live_after_apply(ruleset, "ipv4"),
        live_after_apply(ruleset, "ipv6"),
        ipset_save(ours, stale),
    )
    backend = IptablesBackend(host.runner, NFT)
    plan = backend.plan_reset()
    assert plan.transaction.after[0] == DestroySets((ours.name, stale.name))
    assert "crowdsec" not in str(plan)
    backend.apply(plan)
    assert host.names == {"crowdsec-blacklists"}
    assert IptablesBackend(Host(DOCKER_V4, DOCKER_V6).runner, NFT).plan_reset().in_sync


def test_destroy_retries_while_the_kernel_still_holds_the_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ipsets, "DESTROY_PAUSE", 0.0)
    attempts: list[str] = []

    def respond(argv: list[str], payload: str | None) -> tuple[int, str]:
        if argv[:3] == ["ipset", "list", "-n"]:
            return 0, "dockwall-0123456789abcdef\n"
        attempts.append(payload or "")
        return (1, "Set cannot be destroyed: it is in use") if len(attempts) < 3 else (0, "")

    ipsets.destroy(FakeRunner(respond), ["dockwall-0123456789abcdef"])
    assert len(attempts) == 3


def test_destroy_gives_up_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ipsets, "DESTROY_PAUSE", 0.0)
    monkeypatch.setattr(ipsets, "DESTROY_ATTEMPTS", 3)

    def respond(argv: list[str], _: str | None) -> tuple[int, str]:
        if argv[:3] == ["ipset", "list", "-n"]:
            return 0, "dockwall-0123456789abcdef\n"
        return 1, "Set cannot be destroyed: it is in use"

    with pytest.raises(Exception, match="rules are in force"):
        ipsets.destroy(FakeRunner(respond), ["dockwall-0123456789abcdef"])


def test_members_are_read_of_our_sets_only_and_normalized() -> None:
    text = (
        "create other hash:net family inet\nadd other 10.0.0.0/8\n"
        "create dockwall-a hash:net family inet6 hashsize 1024 maxelem 65536\n"
        "add dockwall-a 2001:db8::1\nadd dockwall-a 2001:db8:1::/64\n"
        "create dockwall-b hash:net family inet hashsize 1024\n"
        "create dwl-feeds-v4 hash:net family inet hashsize 1024\nadd dwl-feeds-v4 10.0.0.1\n"
    )
    found = parse_members(text)
    assert set(found) == {"dockwall-a", "dockwall-b", "dwl-feeds-v4"}
    assert found["dockwall-a"] == {"2001:db8::1/128", "2001:db8:1::/64"}
    assert found["dockwall-b"] == frozenset()
    assert found["dwl-feeds-v4"] == {"10.0.0.1"}, "a list's elements in the list's spelling"


def test_headers_give_type_family_sizes_and_count_without_members() -> None:
    text = (
        "Name: other\nType: hash:ip\nRevision: 5\nHeader: family inet hashsize 1024\n"
        "Number of entries: 3\n\n"
        "Name: dwl-big-v6\nType: hash:net\nRevision: 7\n"
        "Header: family inet6 hashsize 524288 maxelem 2097152 bucketsize 12 initval 0x1\n"
        "Size in memory: 30258000\nReferences: 1\nNumber of entries: 1000000\n\n"
        "Name: dockwall-0123456789abcdef\nType: hash:net\nHeader: family inet\n"
    )
    found = parse_headers(text)
    assert set(found) == {"dwl-big-v6", "dockwall-0123456789abcdef"}
    big = found["dwl-big-v6"]
    assert (big.kind, big.family, big.hashsize, big.maxelem, big.count) == (
        "hash:net",
        "ipv6",
        524288,
        2097152,
        1000000,
    )
    assert found["dockwall-0123456789abcdef"].count is None, "an ipset that prints no count"


def test_missing_ipset_means_no_sets() -> None:
    def respond(argv: list[str], _: str | None) -> tuple[int, str]:
        if argv[0] == "ipset":
            raise CommandError(argv, 127, "ipset: not found")
        return 0, DOCKER_V4

    assert read_headers(FakeRunner(respond)) == {}
