"""The byte alignment of two files gives a true edit script: the new file's lines are
the old ones less the deleted plus the inserted, whatever the edit, or it declines."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from dockwall.policy.bytealign import aligned_edits, equal_bytes

LINES = st.lists(st.sampled_from(["a", "b", "ab", "abc", "10.0.0.1", "10.0.0.10", ""]))


def encoded(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def holds_for(old: list[str], new: list[str], limit: int = 10_000) -> bool:
    """Whether the script found is a true one (the check cannot pass on a wrong one)."""
    edits = aligned_edits(encoded(old), encoded(new), limit)
    assert edits is not None
    deleted = Counter(line.decode() for line in edits.deleted)
    inserted = Counter(line.decode() for line in edits.inserted)
    return not deleted - Counter(old) and Counter(old) - deleted + inserted == Counter(new)


@settings(max_examples=400, deadline=None)
@given(old=LINES, new=LINES)
def test_any_two_files_align_into_a_true_edit_script(old: list[str], new: list[str]) -> None:
    assert holds_for(old, new)


@settings(max_examples=150, deadline=None)
@given(
    old=st.lists(st.integers(0, 10**6), min_size=1, max_size=300, unique=True),
    edits=st.lists(st.tuples(st.sampled_from("dir"), st.integers(0, 299), st.integers())),
)
def test_a_feed_edited_here_and_there_aligns(
    old: list[int], edits: list[tuple[str, int, int]]
) -> None:
    lines = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in old]
    new = list(lines)
    for kind, where, value in edits:
        at = where % (len(new) + 1)
        if kind == "d" and at < len(new):
            del new[at]
        elif kind == "i":
            new.insert(at, f"192.0.2.{value % 256}")
        elif at < len(new):
            new[at] = f"198.51.100.{value % 256}"
    assert holds_for(lines, new)


def test_an_untouched_run_costs_no_line_and_the_edits_are_the_lines_changed() -> None:
    old = [f"10.0.{i >> 8}.{i & 255}" for i in range(20_000)]
    new = [*old[50:], "192.0.2.1", "192.0.2.2"]
    replaced = new[9000]
    new[9000] = "198.51.100.7"
    edits = aligned_edits(encoded(old), encoded(new), 1000)
    assert edits is not None
    assert sorted(edits.deleted) == sorted(line.encode() for line in [*old[:50], replaced])
    assert sorted(edits.inserted) == [b"192.0.2.1", b"192.0.2.2", b"198.51.100.7"]


def test_a_change_over_the_limit_or_a_shuffle_is_declined() -> None:
    old = [f"10.0.{i >> 8}.{i & 255}" for i in range(5000)]
    assert aligned_edits(encoded(old), encoded(old[::-1]), 100) is None
    shuffled = list(old)
    random.Random(7).shuffle(shuffled)
    assert aligned_edits(encoded(old), encoded(shuffled), 100) is None


def test_the_first_differing_byte_is_found_at_any_offset() -> None:
    base = bytes(range(256)) * 40
    for at in (0, 1, 63, 64, 65, 1023, 1024, 5000, len(base) - 1):
        changed = bytearray(base)
        changed[at] ^= 0xFF
        assert equal_bytes(base, 0, bytes(changed), 0) == at
    assert equal_bytes(base, 0, base, 0) == len(base)
    assert equal_bytes(base, 10, base[5:], 5) == len(base) - 10
