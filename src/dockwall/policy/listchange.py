"""A changed IPv4 host list read against its previous contents, with set operations.

Why: a feed of a million addresses refreshed hourly changes a few percent of its lines,
yet reading it line by line costs half a second or more and comparing the result with
what the kernel set holds (two sets of a million) as much again. Here the file's lines
become one set; those not among the previous elements are the only ones looked at
(each a canonical host, a comment or a blank line, or the careful reader takes over),
and what was added and removed falls out of the same set operations: the change a
backend loads in place (ListChange), when its record says the set holds `base`.

Only lists of IPv4 hosts, before and after, are read this way: a network must be folded
with what it covers and IPv6 elements are ordered by address (listfile), so any other
line hands the file to `listfile.parse_lines`, with its `file:line` errors.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ListChange:
    """How a list's elements differ from those it had when its file's digest was `base`
    (the read before). A backend uses it only when `base` is the digest its record says
    the set holds; otherwise it compares the lists itself."""

    base: str
    removed4: tuple[str, ...]
    added4: tuple[str, ...]
    removed6: tuple[str, ...] = ()
    added6: tuple[str, ...] = ()

    def removed(self, family: int) -> tuple[str, ...]:
        return self.removed4 if family == 4 else self.removed6

    def added(self, family: int) -> tuple[str, ...]:
        return self.added4 if family == 4 else self.added6


class ListBefore(Protocol):
    """The previous contents (listfile.ListContents)."""

    @property
    def v4(self) -> Sequence[str]: ...

    @property
    def v6(self) -> Sequence[str]: ...

    @property
    def interval4(self) -> bool: ...


@dataclass(frozen=True)
class HostsRead:
    """The elements in file order (first of duplicates kept, as listfile keeps them)."""

    v4: tuple[str, ...]
    change: ListChange


def comment_cut(raw: str) -> str:
    """The line before its first `#` or `;`."""
    return raw.split("#", 1)[0].split(";", 1)[0]


def is_canonical_host(line: str) -> bool:
    """An IPv4 address exactly as the kernel prints it: inet_pton takes only the dotted
    quad without leading zeros, spaces or anything else."""
    if "/" in line or ":" in line:
        return False
    try:
        socket.inet_pton(socket.AF_INET, line)
    except OSError:
        return False
    return True


def hosts_read_against(lines: list[str], before: ListBefore, base: str) -> HostsRead | None:
    """The file's IPv4 hosts and their change from the list before, or None when the
    file (or the list before) is anything but IPv4 hosts, comments and blank lines."""
    if before.interval4 or before.v6 or not before.v4:
        return None
    seen = set(lines)
    new = seen.difference(before.v4)
    skip = set()
    for line in new:
        if is_canonical_host(line):
            continue
        if comment_cut(line).strip():
            return None
        skip.add(line)
    elements = [line for line in lines if line not in skip] if skip else lines
    seen.difference_update(skip)
    new.difference_update(skip)
    if len(elements) != len(seen):
        elements = list(dict.fromkeys(elements))
    removed = sorted(e for e in before.v4 if e not in seen)
    change = ListChange(base, tuple(removed), tuple(sorted(new)))
    return HostsRead(tuple(elements), change)
