"""The lines one file lost and gained against another, found by aligning their bytes.

Why: an hourly feed of a million lines keeps most of them, in the same order, so the
two files agree over long runs of bytes. Comparing those runs as bytes (C speed) and
looking at single lines only where the files part leaves a few thousand steps of
Python for a 1% change, where splitting both files into a million strings and
comparing them as sets costs half a second (`listchange`). The answer is an edit
script, not necessarily the shortest one: any alignment of equal lines gives lines
deleted and inserted such that the new file's lines are the old ones less the deleted
plus the inserted (as multisets), which is all a caller needs.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_STEP = 1024
LARGEST_STEP = 1 << 20
XOR_BYTES = 64
FIRST_WINDOW = 8
LARGEST_WINDOW = 1 << 17
SEARCH_BYTES = 1 << 20


@dataclass(frozen=True)
class Edits:
    """Lines (without their newline) only the old file has, and only the new one."""

    deleted: list[bytes]
    inserted: list[bytes]


def equal_bytes(old: bytes, i: int, new: bytes, j: int) -> int:
    """How many bytes from old[i] on equal those from new[j] on: equal runs are
    compared in doubling steps, a run that differs halved down to a few bytes, whose
    first difference is the highest set bit of the two read as integers and xored."""
    length = min(len(old) - i, len(new) - j)
    done, step = 0, FIRST_STEP
    while done < length:
        size = min(step, length - done)
        if new.startswith(old[i + done : i + done + size], j + done):
            done += size
            step = min(step * 2, LARGEST_STEP)
            continue
        while size > XOR_BYTES:
            half = size >> 1
            if new.startswith(old[i + done : i + done + half], j + done):
                done += half
                size -= half
            else:
                size = half
        a = int.from_bytes(old[i + done : i + done + size], "big")
        b = int.from_bytes(new[j + done : j + done + size], "big")
        return done + size - 1 - ((a ^ b).bit_length() - 1) // 8
    return done


def window_lines(data: bytes, start: int, count: int) -> list[bytes]:
    """Up to `count` whole lines from `start` (data ends with a newline)."""
    end = start
    for _ in range(count):
        found = data.find(b"\n", end)
        if found < 0:
            break
        end = found + 1
    return data[start:end].split(b"\n")[:-1]


def nearest_match(old_lines: list[bytes], new_lines: list[bytes]) -> tuple[int, int] | None:
    """(p, q) with old_lines[p] == new_lines[q] and p + q least, or None."""
    first: dict[bytes, int] = {}
    for q, line in enumerate(new_lines):
        first.setdefault(line, q)
    best: tuple[int, int] | None = None
    for p, line in enumerate(old_lines):
        if best is not None and p >= best[0] + best[1]:
            break
        match = first.get(line)
        if match is not None and (best is None or p + match < best[0] + best[1]):
            best = (p, match)
    return best


def one_line_step(old: bytes, i: int, new: bytes, j: int) -> tuple[int, int] | None:
    """Where a single deleted, inserted or replaced line ends (the common edit of a
    feed), as the next (i, j); None when it is not one of those."""
    old_end, new_end = old.find(b"\n", i) + 1, new.find(b"\n", j) + 1
    if not old_end or not new_end:
        return None
    if old.startswith(new[j:new_end], old_end):
        return old_end, j
    if new.startswith(old[i:old_end], new_end):
        return i, new_end
    old_next, new_next = old.find(b"\n", old_end) + 1, new.find(b"\n", new_end) + 1
    if old_next and new_next and old[old_end:old_next] == new[new_end:new_next]:
        return old_end, new_end
    return None


def run_step(old: bytes, i: int, new: bytes, j: int) -> tuple[int, int] | None:
    """Where a run of deleted lines (the new file's line found further on in the old
    one) or of inserted lines (the other way round) ends, the nearer of the two, found
    by a byte search within SEARCH_BYTES; None when neither is found."""
    old_end, new_end = old.find(b"\n", i) + 1, new.find(b"\n", j) + 1
    if not old_end or not new_end:
        return None
    deleted = old.find(b"\n" + new[j:new_end], i, i + SEARCH_BYTES) + 1
    inserted = new.find(b"\n" + old[i:old_end], j, j + SEARCH_BYTES) + 1
    if deleted and (not inserted or deleted - i <= inserted - j):
        return deleted, j
    if inserted:
        return i, inserted
    return None


def resync(old: bytes, i: int, new: bytes, j: int) -> tuple[int, int] | None:
    """The next (i, j) at which a line of each file is equal, both at line starts and
    differing there; None when no line within LARGEST_WINDOW lines matches."""
    quick = one_line_step(old, i, new, j) or run_step(old, i, new, j)
    if quick is not None:
        return quick
    window = FIRST_WINDOW
    while window <= LARGEST_WINDOW:
        old_lines, new_lines = window_lines(old, i, window), window_lines(new, j, window)
        best = nearest_match(old_lines, new_lines)
        if best is not None:
            p, q = best
            return i + sum(len(x) + 1 for x in old_lines[:p]), j + sum(
                len(x) + 1 for x in new_lines[:q]
            )
        if len(old_lines) < window and len(new_lines) < window:
            return len(old), len(new)
        window *= 4
    return None


def aligned_edits(old: bytes, new: bytes, limit: int) -> Edits | None:
    """The edit script from `old` to `new` (both whole lines, each ending in a newline),
    or None when it would exceed `limit` lines or the files do not realign."""
    deleted: list[bytes] = []
    inserted: list[bytes] = []
    i = j = 0
    while i < len(old) and j < len(new):
        same = equal_bytes(old, i, new, j)
        if i + same == len(old) and j + same == len(new):
            return Edits(deleted, inserted)
        line_start = old.rfind(b"\n", i, i + same) + 1
        if line_start:
            j += line_start - i
            i = line_start
        step = resync(old, i, new, j)
        if step is None:
            return None
        deleted += old[i : step[0]].split(b"\n")[:-1]
        inserted += new[j : step[1]].split(b"\n")[:-1]
        i, j = step
        if len(deleted) + len(inserted) > limit:
            return None
    deleted += old[i:].split(b"\n")[:-1]
    inserted += new[j:].split(b"\n")[:-1]
    return None if len(deleted) + len(inserted) > limit else Edits(deleted, inserted)
