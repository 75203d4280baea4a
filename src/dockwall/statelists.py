"""The named lists' elements beside the state file, one file per list file digest.

The elements (a million lines for a threat feed) are not in the state JSON: each
list's canonical contents are a file of their own under `lists/`, named by the list
file's digest and written once, so an apply that changes only rules writes no element.
A header line (digest, the count per family, which a reader checks, so a torn or
foreign file is never trusted, whether each family needs intervals, and the file's line
count) is followed by one element per line, IPv4 first. A list whose file is exactly
its IPv4 hosts (HostLines) is saved as the file's own bytes, with its sorted keys in
`<digest>.keys` beside it, so its next version is read against those bytes. The
elements are read only where they are needed: a restore at boot, or an in-place update
computing the difference from the previous contents.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dockwall.compile.ir import AddressSet
from dockwall.policy.hostlines import KEY_TYPE, HostLines, LazyElements
from dockwall.statedir import state_dir, write_atomically

LISTS = "lists"
LIST_HEADER = "dockwall-list"


def without_elements(found: AddressSet) -> AddressSet:
    return replace(found, v4=(), v6=(), change=None)


def list_store(digest: str) -> Path:
    return state_dir() / LISTS / f"{digest}.txt"


def keys_store(digest: str) -> Path:
    """Beside the elements of a list whose file was exactly its IPv4 hosts (HostLines):
    their sorted keys, which the next version of the file is read against."""
    return state_dir() / LISTS / f"{digest}.keys"


def save_lists(lists: tuple[AddressSet, ...], lines: Mapping[str, int] | None = None) -> None:
    """Each list's elements, once per digest: a header line (digest, the count per
    family, which a reader checks, so a torn or foreign file is never trusted, whether
    each family needs intervals, and the file's line count, or -1 when unknown or when
    lines were skipped), then one element per line, IPv4 first."""
    for found in lists:
        lines_read = (lines or {}).get(found.digest, -1)
        path = list_store(found.digest)
        if path.exists() and (lines_read < 0 or saved_lines(path) >= 0):
            continue
        flags = f"{int(found.interval4)} {int(found.interval6)} {lines_read}"
        head = f"{LIST_HEADER} {found.digest} {len(found.v4)} {len(found.v6)} {flags}\n"
        if isinstance(found.v4, HostLines) and not found.v6:
            write_atomically(keys_store(found.digest), found.v4.keys().tobytes(), sync_dir=False)
            write_atomically(path, head.encode("ascii") + found.v4.body)
            continue
        elements = (*found.v4, *found.v6)
        write_atomically(path, head + "".join(("\n".join(elements), "\n" if elements else "")))


def saved_lines(path: Path) -> int:
    """The line count in a saved list's header (-1 unknown): contents saved without one
    are saved again once a clean read of the same file knows it."""
    try:
        with path.open() as handle:
            head = handle.readline().split()
        return int(head[6])
    except (OSError, ValueError, IndexError):
        return -1


@dataclass(frozen=True)
class StoredList:
    """A list's canonical contents as saved for one digest of its file."""

    v4: Sequence[str]
    v6: Sequence[str]
    interval4: bool
    interval6: bool
    lines: int


def stored_elements(digest: str) -> tuple[Sequence[str], Sequence[str]] | None:
    """(v4, v6) as saved for `digest`, or None when missing or not what the header says."""
    stored = stored_list(digest)
    return None if stored is None else (stored.v4, stored.v6)


class SavedElements:
    """Both families' elements of one saved list, split into strings at the first use.

    A plan of a million-entry list in sync needs only the counts: splitting the million
    lines into strings costs a tenth of a second, a tenth of such a plan, while reading
    the file and counting its lines (which is how a torn file is told) costs a hundredth.
    So the file is read and checked at once, and split only when an element is asked for.
    """

    def __init__(self, body: bytes, count4: int, count6: int) -> None:
        self.body = body
        self.counts = (count4, count6)
        self.read: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def elements(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self.read is None:
            lines = self.body.decode("ascii", errors="replace").split("\n")
            count4 = self.counts[0]
            self.read = tuple(lines[:count4]), tuple(lines[count4:-1])
            self.body = b""
        return self.read


class StoredElements(LazyElements):
    """One family's elements of a saved list (SavedElements): the length from the header,
    the elements (and any comparison) once split."""

    def __init__(self, saved: SavedElements, slot: int) -> None:
        self.saved, self.slot = saved, slot

    def loaded(self) -> tuple[str, ...]:
        return self.saved.elements()[self.slot]

    def __len__(self) -> int:
        return self.saved.counts[self.slot]

    def __repr__(self) -> str:
        return f"StoredElements(ipv{(4, 6)[self.slot]}, {len(self)} elements)"


def stored_list(digest: str) -> StoredList | None:
    """The contents saved for `digest`, or None when missing or not what the header says
    (the header's counts are checked against the lines there, unsplit: SavedElements).
    One command asks for the same digest more than once (the file unchanged since the
    last apply, and the list as last applied), so the last few reads are kept, each for
    the file as it was then (inode, size, modification time)."""
    path = list_store(digest)
    try:
        found = path.stat()
    except OSError:
        return None
    return read_stored(str(path), digest, (found.st_ino, found.st_size, found.st_mtime_ns))


@functools.lru_cache(maxsize=2)
def read_stored(path: str, digest: str, version: tuple[int, int, int]) -> StoredList | None:
    """stored_list's read of the file at `path` as it is at `version`."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    first, _, body = data.partition(b"\n")
    head = first.decode("ascii", errors="replace").split()
    if len(head) != 7 or head[:2] != [LIST_HEADER, digest] or not data.endswith(b"\n"):
        return None
    try:
        count4, count6, interval4, interval6, read = (int(field) for field in head[2:])
    except ValueError:
        return None
    if min(count4, count6) < 0 or body.count(b"\n") != count4 + count6:
        return None
    if not count6 and not interval4 and keys_store(digest).exists():
        hosts = HostLines(body, count4, load_keys=functools.partial(stored_keys, digest))
        return StoredList(hosts, (), False, bool(interval6), read)
    saved = SavedElements(body, count4, count6)
    v4, v6 = StoredElements(saved, 0), StoredElements(saved, 1)
    return StoredList(v4, v6, bool(interval4), bool(interval6), read)


def stored_keys(digest: str) -> array[int] | None:
    """The keys saved beside a list's elements (keys_store), or None when unreadable;
    HostLines checks their count against its own."""
    keys = array(KEY_TYPE)
    try:
        data = keys_store(digest).read_bytes()
        keys.frombytes(data)
    except (OSError, ValueError):
        return None
    return keys


def with_elements(found: AddressSet) -> AddressSet:
    """A list of a state file as applied: its elements from `lists/` (an older state
    file kept them inline, and then they are already there)."""
    if found.v4 or found.v6:
        return found
    stored = stored_elements(found.digest)
    if stored is None:
        raise ValueError(f"the elements of list {found.name} ({list_store(found.digest)})")
    return replace(found, v4=stored[0], v6=stored[1])
