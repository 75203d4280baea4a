"""A list file of IPv4 hosts kept as its own bytes, and its next version read against it.

Why: most threat feeds are plain IPv4 addresses, one per line, and a million of them
change by a percent an hour. When a file is exactly its canonical contents (each line
an address as the kernel prints it, no comment, blank line or duplicate), its bytes
are its elements: they are saved as they are, and the next version of the file is
compared with them as bytes (`bytealign`), so an update reads, checks and loads only
the lines that changed instead of a million. What the bytes cannot say, whether an
inserted line repeats one elsewhere in the file, the sorted keys answer (`HostKeys`):
each address as a 32-bit integer, sorted, looked up by bisection and patched, not
rebuilt, with each change.

Anything the fast way does not cover (a non-host line, a duplicate, a change of more
than a tenth of the lines, inconsistent keys) returns None, and the caller reads the
file the careful way (`listchange`, `listfile.parse_lines`).
"""

from __future__ import annotations

import bisect
import functools
import socket
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from dockwall.gcpause import gc_paused
from dockwall.policy.bytealign import aligned_edits
from dockwall.policy.listchange import ListChange, is_canonical_host

KEY_TYPE = "I"
MIN_EDIT_LIMIT = 1000
EDIT_FRACTION = 10


def keys_supported() -> bool:
    return array(KEY_TYPE).itemsize == 4


def host_key(text: str) -> int:
    """The address as an integer: keys sorted by address, so the change of a feed kept
    in address order patches a few long runs of them."""
    return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")


def sorted_keys(hosts: Iterable[str]) -> array[int]:
    """Every host's key, sorted: the addresses packed with one C call each and read as
    32-bit integers at once (byte-swapped on a little-endian machine)."""
    keys = array(KEY_TYPE)
    keys.frombytes(b"".join(map(functools.partial(socket.inet_pton, socket.AF_INET), hosts)))
    if sys.byteorder == "little":
        keys.byteswap()
    return array(KEY_TYPE, sorted(keys))


def patched_keys(keys: array[int], removed: list[int], added: list[int]) -> array[int] | None:
    """`keys` less `removed` plus `added`, still sorted; None when a removed key is not
    there (the keys are not those of the contents) or an added one is (the new file
    repeats a line it kept). The runs kept between changes are copied as memory."""
    events = sorted(
        [(bisect.bisect_left(keys, key), 1, key) for key in removed]
        + [(bisect.bisect_left(keys, key), 0, key) for key in added]
    )
    view = memoryview(keys)
    pieces: list[memoryview | bytes] = []
    kept_from = 0
    for at, is_removal, key in events:
        pieces.append(view[kept_from:at])
        kept_from = at
        held = at < len(keys) and keys[at] == key
        if not is_removal:
            if held:
                return None
            pieces.append(array(KEY_TYPE, (key,)).tobytes())
            continue
        if not held:
            return None
        kept_from = at + 1
    pieces.append(view[kept_from:])
    out = array(KEY_TYPE)
    out.frombytes(b"".join(pieces))
    return out


class LazyElements(Sequence[str]):
    """Elements kept unsplit (a million lines as one bytes object) and split into strings
    at the first use; a subclass says how (`loaded`) and how many (`__len__`)."""

    def loaded(self) -> tuple[str, ...]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self.loaded()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.loaded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and self.loaded() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.loaded())


class HostLines(LazyElements):
    """The elements of a list file that is exactly its canonical IPv4 hosts: `body` is
    the file's bytes, one address and a newline per element, in file order. The
    elements are split into strings only when asked for, and the sorted keys computed
    (or read, `load_keys`) only when a change is read against them."""

    def __init__(
        self,
        body: bytes,
        count: int,
        keys: array[int] | None = None,
        load_keys: Callable[[], array[int] | None] | None = None,
    ) -> None:
        self.body, self.size = body, count
        self._keys, self._load_keys = keys, load_keys
        self._split: tuple[str, ...] | None = None

    def loaded(self) -> tuple[str, ...]:
        if self._split is None:
            self._split = tuple(self.body.decode("ascii").split("\n")[:-1])
        return self._split

    def keys(self) -> array[int]:
        if self._keys is None and self._load_keys is not None:
            found = self._load_keys()
            self._keys = found if found is not None and len(found) == self.size else None
        if self._keys is None:
            self._keys = sorted_keys(self.loaded())
        return self._keys

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HostLines):
            return self.body == other.body
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self.body)

    def __repr__(self) -> str:
        return f"HostLines({self.size} elements)"


def verbatim_hosts(data: bytes, elements: Sequence[str]) -> HostLines | None:
    """The file's elements as HostLines when its bytes are exactly those elements (as
    `listfile` read them: canonical hosts in file order, first of duplicates kept)."""
    if not data.endswith(b"\n") or len(elements) != data.count(b"\n"):
        return None
    if "\n".join(elements).encode("ascii") + b"\n" != data:
        return None
    return HostLines(data, len(elements))


@dataclass(frozen=True)
class HostsChange:
    elements: HostLines
    change: ListChange


def hosts_changed(before: HostLines, data: bytes, base: str) -> HostsChange | None:
    """The new file's elements and their change from `before` (whose file had digest
    `base`), when the new file too is exactly its canonical hosts; else None. Only
    acyclic objects are made, so the collector is paused (its passes over a process
    holding a million strings cost as much as the work)."""
    if not keys_supported() or not data.endswith(b"\n"):
        return None
    with gc_paused():
        return changed_hosts(before, data, base)


def changed_hosts(before: HostLines, data: bytes, base: str) -> HostsChange | None:
    limit = max(MIN_EDIT_LIMIT, before.size // EDIT_FRACTION)
    edits = aligned_edits(before.body, data, limit)
    if edits is None:
        return None
    inserted = set(edits.inserted)
    if len(inserted) != len(edits.inserted):
        return None
    deleted = set(edits.deleted)
    removed = sorted(line.decode("ascii") for line in deleted - inserted)
    added = new_hosts(inserted - deleted)
    if added is None:
        return None
    removed_keys = [host_key(text) for text in removed]
    patched = patched_keys(before.keys(), removed_keys, [host_key(text) for text in added])
    count = before.size - len(removed) + len(added)
    if patched is None or len(patched) != count or data.count(b"\n") != count:
        return None
    return HostsChange(HostLines(data, count, patched), ListChange(base, tuple(removed), added))


def new_hosts(lines: set[bytes]) -> tuple[str, ...] | None:
    """The lines as sorted host texts, or None when one is anything but a canonical
    IPv4 host (a comment, a blank line, a network, an IPv6 address, a stray space)."""
    texts = []
    for line in lines:
        if not line.isascii():
            return None
        text = line.decode("ascii")
        if not is_canonical_host(text):
            return None
        texts.append(text)
    return tuple(sorted(texts))
