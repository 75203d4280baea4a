"""A list file that is exactly its IPv4 hosts is kept as its bytes, and its next version
read against them gives exactly what reading it afresh gives, plus the change; any
line the bytes cannot vouch for (a duplicate, a comment, another spelling) falls back."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockwall.policy.hostlines import (
    HostLines,
    host_key,
    hosts_changed,
    patched_keys,
    sorted_keys,
    verbatim_hosts,
)
from dockwall.policy.listfile import ListContents, read_list_file

HOSTS = st.builds(lambda a, b: f"198.51.{a}.{b}", st.integers(0, 3), st.integers(0, 40))


def contents(path: Path, lines: list[str], previous: ListContents | None = None) -> ListContents:
    path.write_text("".join(f"{line}\n" for line in lines))
    return read_list_file(path, previous=previous)


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(HOSTS, min_size=1, max_size=60, unique=True),
    after=st.lists(
        st.one_of(
            HOSTS, st.sampled_from(["# x", "", "10.0.0.0/8", " 198.51.0.1", "198.51.0.2 ; c"])
        )
    ),
)
def test_a_host_file_read_against_its_bytes_equals_reading_it_afresh(
    tmp_path_factory: pytest.TempPathFactory, before: list[str], after: list[str]
) -> None:
    path = tmp_path_factory.mktemp("h") / "feed.txt"
    first = contents(path, before)
    assert isinstance(first.v4, HostLines)
    second = contents(path, after, previous=first)
    afresh = contents(path, after)
    assert tuple(second.v4) == tuple(afresh.v4)
    assert (second.v6, second.lines, second.interval4) == (
        afresh.v6,
        afresh.lines,
        afresh.interval4,
    )
    if second.change is not None:
        assert set(second.change.removed4) == set(first.v4) - set(afresh.v4)
        assert set(second.change.added4) == set(afresh.v4) - set(first.v4)
    if isinstance(second.v4, HostLines):
        assert sorted(second.v4.keys()) == sorted(host_key(h) for h in afresh.v4)
        assert list(second.v4.keys()) == sorted(second.v4.keys())


def test_an_edited_feed_is_read_as_bytes_and_the_change_found(tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"
    hosts = [f"10.1.{i >> 8}.{i & 255}" for i in range(3000)]
    first = contents(path, hosts)
    edited = [*hosts[10:1500], "192.0.2.7", *hosts[1501:], "192.0.2.8"]
    before = first.v4
    assert isinstance(before, HostLines)
    found = hosts_changed(before, encoded(edited), "d0")
    assert found is not None
    assert set(found.change.removed4) == {*hosts[:10], hosts[1500]}
    assert found.change.added4 == ("192.0.2.7", "192.0.2.8")
    assert found.change.base == "d0"
    assert tuple(found.elements) == tuple(edited)


def encoded(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


@pytest.mark.parametrize(
    "edited",
    [
        ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.2"],  # repeats a line kept
        ["192.0.2.1", "192.0.2.9", "192.0.2.9", "192.0.2.3"],  # a new line twice
        ["192.0.2.1", "192.0.2.2", "# a comment"],
        ["192.0.2.1", "192.0.2.2", "192.0.2.03"],  # not the kernel's spelling
        ["192.0.2.1", "192.0.2.2 ", "192.0.2.3"],
        ["192.0.2.1", "192.0.2.0/24"],
        ["192.0.2.1", "2001:db8::1"],
    ],
)
def test_a_line_the_bytes_cannot_vouch_for_falls_back(edited: list[str]) -> None:
    before = verbatim_hosts(
        encoded(["192.0.2.1", "192.0.2.2", "192.0.2.3"]), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    )
    assert before is not None
    assert hosts_changed(before, encoded(edited), "d0") is None


def test_only_a_file_that_is_exactly_its_hosts_is_kept_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"
    assert isinstance(contents(path, ["192.0.2.1", "192.0.2.2"]).v4, HostLines)
    for lines in (["# head", "192.0.2.1"], ["192.0.2.1", "192.0.2.1"], ["192.0.2.1", ""]):
        assert not isinstance(contents(path, lines).v4, HostLines)
    path.write_bytes(b"192.0.2.1\r\n192.0.2.2\r\n")
    assert not isinstance(read_list_file(path).v4, HostLines)
    path.write_bytes(b"192.0.2.1\n192.0.2.2")
    assert not isinstance(read_list_file(path).v4, HostLines)


def test_keys_are_patched_in_order_and_a_missing_removal_is_refused() -> None:
    hosts = [f"10.0.{i}.{j}" for i in range(10) for j in range(0, 250, 7)]
    keys = sorted_keys(hosts)
    gone = [host_key(h) for h in hosts[5:40]]
    new = [host_key(f"192.0.2.{i}") for i in range(30)]
    patched = patched_keys(keys, gone, new)
    assert patched is not None
    assert list(patched) == sorted({*keys} - {*gone} | {*new})
    assert list(patched) == sorted(patched)
    assert patched_keys(keys, [host_key("203.0.113.1")], []) is None
    assert patched_keys(keys, [], [host_key(hosts[3])]) is None


def test_host_lines_behave_as_their_elements() -> None:
    lines = HostLines(b"192.0.2.1\n192.0.2.2\n", 2, load_keys=lambda: array("I", [1]))
    assert len(lines) == 2 and lines[1] == "192.0.2.2" and list(lines) == ["192.0.2.1", "192.0.2.2"]
    assert lines == ("192.0.2.1", "192.0.2.2") and lines != ("192.0.2.1",)
    assert lines == HostLines(b"192.0.2.1\n192.0.2.2\n", 2)
    assert sorted(lines.keys()) == sorted(host_key(h) for h in lines)  # saved keys of another count
