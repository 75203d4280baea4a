"""The named lists' elements beside the state file: written once per digest, read only
on demand, and the record a plan trusts (`applied_list`) only when it is sure."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dockwall.compile.ir import AddressSet, Ruleset
from dockwall.engine import applied_contents, remembered_list
from dockwall.policy.hostlines import HostLines, host_key
from dockwall.policy.listchange import ListChange
from dockwall.policy.listfile import ListContents, read_list_file
from dockwall.statefile import (
    LAST_APPLIED,
    applied_digests,
    applied_list,
    commit_pending,
    discard_pending,
    forget_applied,
    load_applied,
    records_distrusted,
    save_applied,
    save_pending,
)
from dockwall.statelists import LISTS, StoredElements, stored_list

BIG = AddressSet("big", "big.txt", "a" * 64, ("192.0.2.1", "198.51.100.0/24"), ("2001:db8::1",))
BIGGER = AddressSet("big", "big.txt", "b" * 64, ("192.0.2.1", "192.0.2.2"), ())


def ruleset(*lists: AddressSet) -> Ruleset:
    return Ruleset((), (), None, None, lists=lists)


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "state"
    monkeypatch.setenv("DOCKWALL_STATE_DIR", str(directory))
    return directory


def stored(state: Path) -> set[str]:
    return {p.name for p in (state / LISTS).iterdir()}


def test_the_state_json_holds_no_element_and_the_elements_come_back(state: Path) -> None:
    save_pending("nftables", ruleset(BIG))
    commit_pending()
    text = (state / LAST_APPLIED).read_text()
    assert "198.51.100.0/24" not in text
    assert load_applied().ruleset == ruleset(BIG)
    record = applied_list("big", "nftables")
    assert record is not None and record.digest == BIG.digest
    assert record.elements() == (BIG.v4, BIG.v6)
    assert applied_digests() == {"big": BIG.digest}


def test_saved_elements_are_counted_unsplit_and_equal_to_the_saved_ones() -> None:
    """A plan in sync asks only how many; splitting a million lines waits for a use."""
    save_applied("nftables", ruleset(BIG))
    found = stored_list(BIG.digest)
    assert found is not None
    assert (len(found.v4), len(found.v6)) == (2, 1) and bool(found.v4)
    assert isinstance(found.v4, StoredElements) and found.v4.saved.read is None, "unsplit"
    assert found.v4 == BIG.v4 and BIG.v4 == found.v4 and found.v6 == list(BIG.v6)
    assert hash(found.v4) == hash(BIG.v4) and found.v4[1] == "198.51.100.0/24"
    assert found.v4 not in (("192.0.2.1",), BIG.v6)
    assert AddressSet("big", "big.txt", BIG.digest, found.v4, found.v6) == BIG


def test_a_rule_only_apply_writes_no_element(state: Path) -> None:
    save_applied("nftables", ruleset(BIG))
    path = state / LISTS / f"{BIG.digest}.txt"
    before = path.stat().st_mtime_ns, path.stat().st_ino
    save_pending("nftables", ruleset(BIG))
    commit_pending()
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_old_contents_are_pruned_once_no_record_names_them(state: Path) -> None:
    save_applied("nftables", ruleset(BIG))
    save_pending("nftables", ruleset(BIGGER))
    assert stored(state) == {f"{BIG.digest}.txt", f"{BIGGER.digest}.txt"}
    commit_pending()
    assert stored(state) == {f"{BIGGER.digest}.txt"}
    save_pending("nftables", ruleset(BIG))
    discard_pending()
    assert stored(state) == {f"{BIGGER.digest}.txt"}
    forget_applied()
    assert stored(state) == set()


def test_the_record_is_not_trusted_when_unsure(state: Path) -> None:
    assert applied_list("big", "nftables") is None
    save_applied("nftables", ruleset(BIG))
    assert applied_list("big", "iptables") is None
    assert applied_list("other", "nftables") is None
    with records_distrusted():
        assert applied_list("big", "nftables") is None
    assert applied_list("big", "nftables") is not None
    save_pending("nftables", ruleset(BIGGER))
    assert applied_list("big", "nftables") is None


def test_damaged_contents_are_never_elements(state: Path) -> None:
    save_applied("nftables", ruleset(BIG))
    path = state / LISTS / f"{BIG.digest}.txt"
    path.write_text(path.read_text().rsplit("\n", 2)[0] + "\n")
    record = applied_list("big", "nftables")
    assert record is not None and record.elements() is None


def test_a_state_file_with_inline_elements_still_loads(state: Path) -> None:
    state.mkdir(parents=True)
    inline = {
        "backend": "nftables",
        "ruleset": {"bridges": [], "guards": [], "default_ingress": None, "default_egress": None},
    }
    inline["ruleset"]["lists"] = [
        {"name": "big", "file": "big.txt", "digest": BIG.digest, "v4": list(BIG.v4), "v6": []}
    ]
    (state / LAST_APPLIED).write_text(json.dumps(inline))
    assert load_applied().ruleset.lists[0].v4 == BIG.v4
    record = applied_list("big", "nftables")
    assert record is not None and record.elements() is None


def test_contents_saved_from_a_clean_read_stand_for_their_file(tmp_path: Path) -> None:
    listed = tmp_path / "big.txt"
    listed.write_text("192.0.2.1\n198.51.100.0/24\n2001:db8::1\n")
    contents = read_list_file(listed)
    found = replace(
        BIG,
        digest=contents.digest,
        v4=contents.v4,
        v6=contents.v6,
        interval4=contents.interval4,
        interval6=contents.interval6,
    )
    save_pending("nftables", ruleset(found), {contents.digest: contents.lines})
    commit_pending()
    remembered = remembered_list(contents.digest)
    assert remembered is not None
    assert (remembered.v4, remembered.v6, remembered.lines) == (BIG.v4, BIG.v6, 3)
    assert read_list_file(listed, known=remembered_list) == contents


def test_contents_of_an_unknown_read_are_elements_only(tmp_path: Path) -> None:
    save_applied("nftables", ruleset(BIG))
    assert remembered_list(BIG.digest) is None, "no line count: maybe lines were skipped"
    record = applied_list("big", "nftables")
    assert record is not None and record.elements() == (BIG.v4, BIG.v6)


def test_a_known_digest_is_taken_without_parsing(tmp_path: Path) -> None:
    listed = tmp_path / "big.txt"
    listed.write_text("198.51.100.7\n")
    digest = read_list_file(listed).digest
    known = ListContents("", ("192.0.2.9",), (), False, False, digest, 1)
    taken = read_list_file(listed, known=lambda d: known if d == digest else None)
    assert (taken.v4, taken.file, taken.digest) == (("192.0.2.9",), str(listed), digest)


def test_contents_saved_without_a_line_count_get_one_from_a_clean_read() -> None:
    save_applied("nftables", ruleset(BIG))
    assert remembered_list(BIG.digest) is None
    save_pending("nftables", ruleset(BIG), {BIG.digest: 3})
    commit_pending()
    remembered = remembered_list(BIG.digest)
    assert remembered is not None and remembered.lines == 3


def host_list(listed: Path, hosts: list[str]) -> AddressSet:
    listed.write_text("".join(f"{h}\n" for h in hosts))
    contents = read_list_file(listed)
    return replace(BIGGER, digest=contents.digest, v4=contents.v4, v6=())


def test_a_host_file_is_saved_as_its_bytes_with_keys_and_the_next_read_against_them(
    tmp_path: Path, state: Path
) -> None:
    listed = tmp_path / "big.txt"
    hosts = [f"10.2.{i >> 8}.{i & 255}" for i in range(2000)]
    first = host_list(listed, hosts)
    save_pending("nftables", ruleset(first), {first.digest: len(hosts)})
    commit_pending()
    assert stored(state) == {f"{first.digest}.txt", f"{first.digest}.keys"}
    applied = applied_contents("big")
    assert applied is not None and isinstance(applied.v4, HostLines)
    assert applied.v4.body == listed.read_bytes()
    assert list(applied.v4.keys()) == sorted(host_key(h) for h in hosts)
    listed.write_text("".join(f"{h}\n" for h in [*hosts[3:], "192.0.2.44"]))
    second = read_list_file(listed, previous=applied)
    assert isinstance(second.v4, HostLines)
    assert second.change == ListChange(first.digest, tuple(sorted(hosts[:3])), ("192.0.2.44",))
    save_pending("nftables", ruleset(replace(first, digest=second.digest, v4=second.v4)))
    commit_pending()
    assert stored(state) == {f"{second.digest}.txt", f"{second.digest}.keys"}


def test_damaged_keys_are_computed_again_from_the_elements(tmp_path: Path, state: Path) -> None:
    listed = tmp_path / "big.txt"
    found = host_list(listed, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
    save_applied("nftables", ruleset(found))
    keys = state / LISTS / f"{found.digest}.keys"
    keys.write_bytes(keys.read_bytes()[:5])
    applied = applied_contents("big")
    assert applied is not None and isinstance(applied.v4, HostLines)
    assert sorted(applied.v4.keys()) == sorted(host_key(h) for h in found.v4)


def test_a_saved_list_asked_for_again_is_not_read_again_unless_replaced(state: Path) -> None:
    save_applied("nftables", ruleset(BIG))
    first = stored_list(BIG.digest)
    assert first is not None and stored_list(BIG.digest) is first
    path = state / LISTS / f"{BIG.digest}.txt"
    torn = path.with_name("torn")
    torn.write_bytes(path.read_bytes()[:-3])
    torn.replace(path)
    assert stored_list(BIG.digest) is None
    path.unlink()
    assert stored_list(BIG.digest) is None
