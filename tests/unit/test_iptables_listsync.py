"""A named list's ipset on the iptables backend, against a fake host (no root): a plan
in sync reads headers, never members; a rule-only change leaves the list set alone; a
changed list file is loaded as its difference from the record, without reading the set;
a header that disagrees with the record (or a deep plan) reads the members instead."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dockwall.backends.iptables import IptablesBackend
from dockwall.backends.iptables.ipsets import IpSet
from dockwall.backends.iptables.render import render
from dockwall.compile.ir import (
    AddressSet,
    Allow,
    Filter,
    Guard,
    ListChange,
    PortMatch,
    Ruleset,
)

from .test_iptables_backend import NFT, live_after_apply
from .test_iptables_ipsets import BRIDGE, ENDPOINTS, Host, is_read

WEB = PortMatch("tcp", 8080, 8080)
ENTRIES = 20_000


def feed(count: int, start: int = 0, digest: str = "d1") -> AddressSet:
    hosts = tuple(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(start, count))
    return AddressSet("big", "big.txt", digest, v4=hosts, v6=("2001:db8:200::7",))


def rules(found: AddressSet, port: int = 8080) -> Ruleset:
    allow = Allow(ports=(PortMatch("tcp", port, port),), original=True, except_lists=("big",))
    guard = Guard("wwwwwwwwwwww", "web", "test", ENDPOINTS, Filter((allow,)), None)
    return Ruleset((BRIDGE,), (guard,), None, None, lists=(found,))


def list_sets(ruleset: Ruleset) -> list[IpSet]:
    return [s for f in ("ipv4", "ipv6") for s in render(ruleset, f).sets.values()]  # type: ignore[arg-type]


def host_with(applied: Ruleset, held: AddressSet | None = None) -> Host:
    """Rules of `applied` in force; the list sets hold `held` (default: applied's list)."""
    contents = list_sets(replace(applied, lists=(held,)) if held else applied)
    text = "\n".join(
        line
        for s in contents
        for line in [
            f"create {s.name} {s.kind} hashsize 1024 maxelem {s.maxelem}",
            *(f"add {s.name} {m}" for m in s.members),
        ]
    )
    return Host(live_after_apply(applied, "ipv4"), live_after_apply(applied, "ipv6"), text + "\n")


@dataclass
class Record:
    """What the state file says of a list as applied (statefile.AppliedList's shape);
    `reads` counts the reads of its elements (a file of a million lines)."""

    found: AddressSet
    reads: int = 0

    @property
    def digest(self) -> str:
        return self.found.digest

    def elements(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        self.reads += 1
        return self.found.v4, self.found.v6


def backend(host: Host, record: AddressSet | Record | None) -> IptablesBackend:
    kept = Record(record) if isinstance(record, AddressSet) else record
    return IptablesBackend(host.runner, NFT, lambda name: kept if name == "big" else None)


def member_reads(host: Host) -> list[str]:
    """Every read of set members: `ipset save` (all) or a batch of `save NAME`."""
    return [
        payload or " ".join(argv)
        for argv, payload in host.runner.calls
        if argv[:2] == ["ipset", "save"] or (is_read(argv, payload) and argv[1] == "restore")
    ]


def test_plan_in_sync_reads_headers_only() -> None:
    found = feed(ENTRIES)
    host = host_with(rules(found))
    record = Record(found)
    plan = backend(host, record).plan(rules(found))
    assert plan.in_sync, plan.changes
    assert member_reads(host) == []
    assert record.reads == 0, "the digest and the header's count suffice"


def test_a_rule_only_change_leaves_the_list_set_untouched() -> None:
    found = feed(ENTRIES)
    host = host_with(rules(found))
    tested = backend(host, found)
    plan = tested.plan(rules(found, port=8081))
    assert plan.changes and all("ipset" not in c.where for c in plan.changes)
    tested.apply(plan)
    assert member_reads(host) == []
    assert not [c for c in host.commands() if c.startswith("ipset")], host.commands()


def test_a_changed_list_is_its_difference_from_the_record_without_reading_the_set() -> None:
    old = feed(ENTRIES)
    new = replace(feed(ENTRIES + 100, start=100), digest="d2")
    host = host_with(rules(old))
    record = Record(old)
    plan = backend(host, record).plan(rules(new))
    assert record.reads == 1
    assert [c.text for c in plan.changes] == [
        f"list big: +100 -100 (in place, {ENTRIES} entries)"
    ], "the rules stay: only the set changes"
    [load] = plan.transaction.before
    lines = load.payload.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 200 and lines[0] == "del dwl-big-v4 10.0.0.0"
    assert set(lines[100:]) == {f"add dwl-big-v4 {m}" for m in new.v4[-100:]}
    assert load.argv == ("ipset", "-exist", "restore")  # type: ignore[attr-defined]
    assert member_reads(host) == []
    assert plan.transaction.rules == ()


def test_a_change_read_against_the_recorded_digest_is_the_update() -> None:
    """The change found while reading the file stands for the comparison (it is what
    this plan loads, here on purpose not the lists' real difference); one read against
    another digest is ignored and the lists are compared."""
    old = feed(ENTRIES)
    new = replace(feed(ENTRIES + 100, start=100), digest="d2")
    host = host_with(rules(old))
    said = ListChange("d1", ("10.0.0.0",), ("10.0.0.100",))
    plan = backend(host, Record(old)).plan(rules(replace(new, change=said)))
    [load] = plan.transaction.before
    assert load.payload.splitlines() == [  # type: ignore[attr-defined]
        "del dwl-big-v4 10.0.0.0",
        "add dwl-big-v4 10.0.0.100",
    ]
    stale = ListChange("d0", ("10.0.0.0",), ("10.0.0.100",))
    plan = backend(host, Record(old)).plan(rules(replace(new, change=stale)))
    [load] = plan.transaction.before
    assert len(load.payload.splitlines()) == 200  # type: ignore[attr-defined]


def test_a_header_that_disagrees_with_the_record_reads_the_members() -> None:
    old = feed(ENTRIES)
    drifted = replace(old, v4=old.v4[:-1])
    host = host_with(rules(old), held=drifted)
    plan = backend(host, old).plan(rules(old))
    assert [c.text for c in plan.changes] == [f"list big: +1 -0 (in place, {ENTRIES} entries)"]
    assert member_reads(host) == ["save dwl-big-v4\n"]


def test_no_record_or_a_deep_plan_compares_members() -> None:
    found = feed(ENTRIES)
    host = host_with(rules(found))
    assert backend(host, None).plan(rules(found)).in_sync
    assert member_reads(host) == ["save dwl-big-v4\nsave dwl-big-v6\n"]
    deep = host_with(rules(found), held=replace(found, v6=("2001:db8:200::8",)))
    plan = backend(deep, found).plan(rules(found), deep=True)
    assert [c.text for c in plan.changes] == ["list big: +1 -1 (in place, 1 entries)"]


def test_a_new_list_set_is_sized_for_its_list_up_front() -> None:
    found = feed(ENTRIES)
    host = Host(*(live_after_apply(rules(found), f) for f in ("ipv4", "ipv6")))  # type: ignore[arg-type]
    plan = backend(host, None).plan(rules(found))
    [load] = plan.transaction.before
    first = load.payload.splitlines()[0]  # type: ignore[attr-defined]
    assert first == "create dwl-big-v4 hash:net family inet hashsize 16384 maxelem 65536"
    assert plan.transaction.fail[0].names == ("dwl-big-v4", "dwl-big-v6")  # type: ignore[attr-defined]


def test_a_family_no_rule_matches_against_gets_no_list_set() -> None:
    """Only IPv4 endpoints: an IPv6 set would do nothing, and with no rule naming it
    nothing would prove it dockwall's, so it could never be removed."""
    v4_only = replace(
        rules(feed(10)), guards=(replace(rules(feed(10)).guards[0], endpoints=ENDPOINTS[:1]),)
    )
    assert [s.name for s in list_sets(v4_only)] == ["dwl-big-v4"]
