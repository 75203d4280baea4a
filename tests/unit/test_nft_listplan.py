"""nftables plans of named lists, with a fake nft: what is read, what is loaded.

The kernel here is the render of a ruleset with a list, answered the way nft answers
(terse ruleset listing, one `list set` per set): the record of the last apply
(statefile) decides whether a list set's elements are ever read."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dockwall.agent.listwatch import ListWatch
from dockwall.backends.nftables import NftablesBackend
from dockwall.backends.nftables.render import table_objects
from dockwall.compile.ir import AddressSet, ListChange, Ruleset
from dockwall.policy.model import Policy
from dockwall.statefile import applied_list, records_distrusted, save_applied
from tests.unit.test_nft_live import FakeRunner, listed, without_table
from tests.unit.test_nft_render import RULESET

BIG = AddressSet("big", "big.txt", "a" * 64, tuple(f"10.0.{i >> 8}.{i & 255}" for i in range(500)))
WITH_LIST = replace(RULESET, lists=(BIG,))
READ_LIST = ("nft", "-j", "list", "set", "inet", "dockwall", "list-big-v4")


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKWALL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def kernel(ruleset: Ruleset) -> FakeRunner:
    """nft answering for a table that holds exactly `ruleset`."""
    document = {"nftables": [{"metainfo": {}}, *table_objects(ruleset)]}
    return FakeRunner(listed(json.dumps(document)))


def reads_of_the_list(runner: FakeRunner) -> int:
    return sum(1 for argv, _ in runner.calls if tuple(argv) == READ_LIST)


def test_in_sync_by_the_record_reads_no_list_element() -> None:
    save_applied("nftables", WITH_LIST)
    runner = kernel(WITH_LIST)
    assert NftablesBackend(runner).plan(WITH_LIST).in_sync
    assert reads_of_the_list(runner) == 0
    assert runner.calls[0][0] == ["nft", "-t", "-j", "list", "ruleset"]


def test_verify_lists_reads_the_set_and_sees_a_hand_edit() -> None:
    save_applied("nftables", WITH_LIST)
    edited = replace(BIG, v4=(*BIG.v4, "192.0.2.250"))
    runner = kernel(replace(RULESET, lists=(edited,)))
    assert NftablesBackend(runner).plan(WITH_LIST).in_sync, "the fast check trusts the record"
    with records_distrusted():
        plan = NftablesBackend(runner).plan(WITH_LIST)
    assert [c.text for c in plan.changes] == ["list big: +0 -1 (in place, 500 entries)"]
    assert plan.transaction.rules[0].payload == (
        "delete element inet dockwall list-big-v4 { 192.0.2.250 }\n"
    )
    assert reads_of_the_list(runner) == 1


def test_a_changed_file_updates_in_place_from_the_record_without_reading_the_set() -> None:
    save_applied("nftables", WITH_LIST)
    newer = replace(BIG, digest="b" * 64, v4=(*BIG.v4[1:], "10.9.0.1"))
    runner = kernel(WITH_LIST)
    plan = NftablesBackend(runner).plan(replace(RULESET, lists=(newer,)))
    assert [c.text for c in plan.changes] == ["list big: +1 -1 (in place, 500 entries)"]
    assert plan.transaction.rules[0].payload == (
        "delete element inet dockwall list-big-v4 { 10.0.0.0 }\n"
        "add element inet dockwall list-big-v4 { 10.9.0.1 }\n"
    )
    assert reads_of_the_list(runner) == 0


def test_a_change_read_against_the_recorded_digest_is_loaded_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The change found while reading the file (ListChange) is the update: the recorded
    elements are never read, nor the two lists compared."""
    save_applied("nftables", WITH_LIST)
    monkeypatch.setattr("dockwall.statefile.stored_elements", fail_if_read)
    change = ListChange(BIG.digest, ("10.0.0.0",), ("10.9.0.1",))
    newer = replace(BIG, digest="b" * 64, v4=(*BIG.v4[1:], "10.9.0.1"), change=change)
    plan = NftablesBackend(kernel(WITH_LIST)).plan(replace(RULESET, lists=(newer,)))
    assert [c.text for c in plan.changes] == ["list big: +1 -1 (in place, 500 entries)"]
    assert plan.transaction.rules[0].payload == (
        "delete element inet dockwall list-big-v4 { 10.0.0.0 }\n"
        "add element inet dockwall list-big-v4 { 10.9.0.1 }\n"
    )


def test_a_change_read_against_another_digest_is_ignored() -> None:
    save_applied("nftables", WITH_LIST)
    stale = ListChange("c" * 64, ("10.0.0.7",), ("10.8.0.1",))
    newer = replace(BIG, digest="b" * 64, v4=(*BIG.v4[1:], "10.9.0.1"), change=stale)
    plan = NftablesBackend(kernel(WITH_LIST)).plan(replace(RULESET, lists=(newer,)))
    assert plan.transaction.rules[0].payload == (
        "delete element inet dockwall list-big-v4 { 10.0.0.0 }\n"
        "add element inet dockwall list-big-v4 { 10.9.0.1 }\n"
    )


def fail_if_read(digest: str) -> None:
    raise AssertionError(f"the recorded elements of {digest} were read")


def test_without_a_record_the_set_is_read() -> None:
    runner = kernel(WITH_LIST)
    assert applied_list("big", "nftables") is None
    assert NftablesBackend(runner).plan(WITH_LIST).in_sync
    assert reads_of_the_list(runner) == 1


def test_a_rule_only_change_keeps_the_list_set_and_loads_no_element() -> None:
    save_applied("nftables", WITH_LIST)
    runner = kernel(WITH_LIST)
    fewer = replace(WITH_LIST, guards=WITH_LIST.guards[:1])
    plan = NftablesBackend(runner).plan(fewer)
    [step] = plan.transaction.rules
    head = step.payload.split("\n")[:2]
    assert head == ["add table inet dockwall", "flush table inet dockwall"]
    assert "list-big-v4" not in step.payload, "neither deleted, declared nor filled"
    assert "delete table" not in step.payload
    assert not any("list big" in c.text for c in plan.changes)


def test_a_first_load_fills_the_list_set_in_the_same_transaction() -> None:
    plan = NftablesBackend(without_table()).plan(WITH_LIST)
    [step] = plan.transaction.rules
    assert step.payload.startswith("add table inet dockwall\ndelete table inet dockwall\n")
    last = step.payload.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("add element inet dockwall list-big-v4 { 10.0.0.0, 10.0.0.1, ")
    assert "list big: +500 -0 (loaded, 500 entries)" in [c.text for c in plan.changes]


def test_the_agent_checks_list_elements_deeply_once_an_hour() -> None:
    now = [0.0]
    policy = Policy.model_validate({"version": 1, "lists": {"big": {"file": "big.txt"}}})
    watch = ListWatch(Path("/nonexistent/policy.yaml"), policy, clock=lambda: now[0])
    now[0] = 3599.0
    with watch.drift_check(policy):
        assert applied_list_distrusted() is False
    now[0] = 3600.0
    with watch.drift_check(policy):
        assert applied_list_distrusted()
    with watch.drift_check(policy):
        assert applied_list_distrusted() is False
    bare = Policy.model_validate({"version": 1})
    now[0] = 99999.0
    with watch.drift_check(bare):
        assert applied_list_distrusted() is False


def applied_list_distrusted() -> bool:
    """Whether a recorded list is hidden from plans right now."""
    save_applied("nftables", WITH_LIST)
    return applied_list("big", "nftables") is None
