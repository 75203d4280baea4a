"""A changed IPv4 host list read against its previous contents gives exactly what the
line-by-line reader gives, plus the change; anything else falls back to that reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockwall.policy.listchange import ListChange
from dockwall.policy.listfile import ListContents, ListFileError, read_list_file

HOSTS = st.builds(lambda a, b: f"198.51.{a}.{b}", st.integers(0, 3), st.integers(0, 20))
NOISE = st.sampled_from(["", "# feed header", "; Spamhaus", "   ", "#"])


def contents(path: Path, text: str, previous: ListContents | None = None) -> ListContents:
    path.write_text(text)
    return read_list_file(path, previous=previous)


@settings(max_examples=120, deadline=None)
@given(
    before=st.lists(st.one_of(HOSTS, NOISE), min_size=1, max_size=40),
    after=st.lists(st.one_of(HOSTS, NOISE), max_size=40),
)
def test_read_against_the_previous_list_equals_reading_it_afresh(
    tmp_path_factory: pytest.TempPathFactory, before: list[str], after: list[str]
) -> None:
    path = tmp_path_factory.mktemp("l") / "feed.txt"
    first = contents(path, "\n".join(before) + "\n")
    second = contents(path, "\n".join(after) + "\n", previous=first)
    afresh = contents(path, "\n".join(after) + "\n")
    assert (second.v4, second.v6, second.lines) == (afresh.v4, afresh.v6, afresh.lines)
    assert (second.interval4, second.interval6) == (afresh.interval4, afresh.interval6)
    if second.change is not None:
        assert second.change.base == first.digest
        assert set(second.change.removed4) == set(first.v4) - set(afresh.v4)
        assert set(second.change.added4) == set(afresh.v4) - set(first.v4)
    elif first.v4 and first.digest != afresh.digest:
        pytest.fail("a host list changed into a host list was not read against the last")


def test_an_edit_of_a_host_list_carries_what_was_added_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"
    first = contents(path, "# head\n192.0.2.1\n192.0.2.2\n192.0.2.3\n")
    second = contents(path, "# head\n192.0.2.2\n192.0.2.3\n192.0.2.9\n192.0.2.4\n", first)
    assert second.v4 == ("192.0.2.2", "192.0.2.3", "192.0.2.9", "192.0.2.4")
    assert second.change == ListChange(first.digest, ("192.0.2.1",), ("192.0.2.4", "192.0.2.9"))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("192.0.2.1\n", "192.0.2.1\n10.0.0.0/8\n"),  # a network: folding needed
        ("10.0.0.0/8\n", "10.0.0.0/8\n10.1.2.3\n"),  # the list before had one
        ("192.0.2.1\n", "192.0.2.1\n2001:db8::1\n"),  # IPv6 is ordered by address
        ("192.0.2.1\n", "192.0.2.1\n 192.0.2.2 # spaced\n"),  # not the kernel's spelling
    ],
)
def test_anything_but_hosts_is_read_line_by_line_and_gives_the_same(
    tmp_path: Path, before: str, after: str
) -> None:
    path = tmp_path / "feed.txt"
    first = contents(path, before)
    second = contents(path, after, first)
    assert second.change is None
    assert second == contents(path, after)


def test_a_bad_line_in_an_edited_list_is_still_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"
    first = contents(path, "192.0.2.1\n192.0.2.2\n")
    with pytest.raises(ListFileError, match=r"feed\.txt:3: '192\.0\.2\.300' is not an IP"):
        contents(path, "192.0.2.1\n192.0.2.2\n192.0.2.300\n", first)
