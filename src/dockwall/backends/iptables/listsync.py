"""A named list's set brought to the list file's contents with the least kernel work.

The set's header (`setread`) and the record of what was last loaded into it (the list's
digest and elements in the state file, handed in as `Recorded`) say what it holds
without reading it: the same entry count as recorded, and it holds what was recorded.
Then the list is in sync when its file's digest is the recorded one (a plan of a
million-entry list compares two hashes and two numbers), and a changed file is loaded
as the difference between the recorded elements and the new ones (`add`/`del` in the
set the rules use, in one `ipset restore`). Only a set whose header disagrees with the
record, or that has no record, or a deep check (`deep`), reads the set's members and
diffs against those instead. A set too small for the new contents is refilled aside
and swapped in; a missing one is created, sized for its list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from dockwall.backends.base import Change
from dockwall.backends.iptables.ipsets import IpSet, LiveSet, fill, refill
from dockwall.backends.iptables.setread import LIST_PREFIX, Header
from dockwall.compile.ir import AddressSet


class ListRecord(Protocol):
    """A named list as this backend last applied it (`statefile.AppliedList`)."""

    @property
    def digest(self) -> str: ...

    def elements(self) -> tuple[Sequence[str], Sequence[str]] | None:
        """(v4, v6) as loaded, or None when they were not kept."""
        ...


Recorded = Callable[[str], ListRecord | None]
"""The record of list NAME, or None when it is not known for sure (never applied, by
another backend, an interrupted load, or a deep plan): then the set itself is read."""


def no_record(_: str) -> ListRecord | None:
    return None


def known(recorded: Recorded, name: str, wanted: dict[int, IpSet]) -> AddressSet | None:
    """The record with its elements. When its digest is the list file's, they are the
    file's elements already in hand; only a changed list reads the recorded ones (a file
    of a million lines), to load the difference."""
    record = recorded(name)
    if record is None:
        return None
    digest = next(iter(wanted.values())).digest
    if digest and record.digest == digest:
        held = {number: s.members for number, s in wanted.items()}
        return AddressSet(name, "", digest, v4=held.get(4, ()), v6=held.get(6, ()))
    elements = record.elements()
    if elements is None:
        return None
    return AddressSet(name, "", record.digest, v4=elements[0], v6=elements[1])


def list_name(set_name: str) -> str:
    return set_name.removeprefix(LIST_PREFIX).rsplit("-v", 1)[0]


def family_number(wanted: IpSet) -> int:
    return 4 if wanted.family == "ipv4" else 6


@dataclass(frozen=True)
class ListStep:
    """What one list set needs: created, updated in place, or refilled and swapped."""

    wanted: IpSet
    how: Literal["new set", "in place", "refilled"]
    added: Sequence[str]
    removed: Sequence[str]

    def script(self) -> str:
        if self.how == "in place":
            name = self.wanted.name
            return "".join(f"del {name} {m}\n" for m in self.removed) + fill(name, self.added)
        return refill(self.wanted, self.how == "refilled")

    def change(self) -> Change:
        """One line per list and family, `list feeds: +120 -45`: a plan never lists a
        feed's hundred thousand elements."""
        return Change(
            self.wanted.family,
            "add",
            f"ipset {self.wanted.name}",
            f"list {list_name(self.wanted.name)}: +{len(self.added)} -{len(self.removed)} "
            f"({self.how}, {len(self.wanted.members)} entries)",
        )


def vouched(wanted: IpSet, header: Header, record: AddressSet | None) -> bool:
    """The header agrees with the record: same type and family, as many entries."""
    return (
        record is not None
        and header.kind == "hash:net"
        and header.family == wanted.family
        and header.count == len(record.elements(family_number(wanted)))
    )


def records(
    wanted: Iterable[IpSet], headers: dict[str, Header], recorded: Recorded
) -> dict[str, AddressSet | None]:
    """The records of the lists whose sets exist (a new set needs none), by list name."""
    by_list: dict[str, dict[int, IpSet]] = {}
    for found in wanted:
        if found.name in headers:
            by_list.setdefault(list_name(found.name), {})[family_number(found)] = found
    return {name: known(recorded, name, sets) for name, sets in sorted(by_list.items())}


def unread(
    wanted: Iterable[IpSet], headers: dict[str, Header], found: dict[str, AddressSet | None]
) -> list[str]:
    """The list sets whose members must be read: those the header does not vouch for."""
    return [
        s.name
        for s in wanted
        if s.name in headers and not vouched(s, headers[s.name], found.get(list_name(s.name)))
    ]


def in_record(wanted: IpSet, record: AddressSet | None) -> bool:
    """The list file is the one recorded (its digest), parsed to as many elements."""
    return (
        record is not None
        and bool(wanted.digest)
        and record.digest == wanted.digest
        and len(record.elements(family_number(wanted))) == len(wanted.members)
    )


def list_step(wanted: IpSet, live: LiveSet | None, record: AddressSet | None) -> ListStep | None:
    """None when the set holds the list already. `live.members` were read when the
    header did not vouch for the record (`unread`); else the record says what it holds."""
    if live is None:
        return ListStep(wanted, "new set", wanted.members, ())
    if live.members is None and in_record(wanted, record):
        return None
    change = read_change(wanted, live, record)
    if change is not None:
        removed, added = change
    else:
        held = live.members
        if held is None:
            held = frozenset(record.elements(family_number(wanted)) if record is not None else ())
        members = set(wanted.members)
        removed = tuple(sorted(held - members))
        added = tuple(sorted(members - held))
    if not added and not removed:
        return None
    size = len(wanted.members)
    fits = live.maxelem >= size and (live.kind, live.family) == ("hash:net", wanted.family)
    return ListStep(wanted, "in place" if fits else "refilled", added, removed)


def read_change(
    wanted: IpSet, live: LiveSet, record: AddressSet | None
) -> tuple[Sequence[str], Sequence[str]] | None:
    """(removed, added) as found while reading the list file, when it was read against
    the digest the header-vouched record says the set holds; else None (compare)."""
    change = wanted.change
    if change is None or live.members is not None or record is None:
        return None
    if change.base != record.digest:
        return None
    number = family_number(wanted)
    return change.removed(number), change.added(number)
