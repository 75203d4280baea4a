"""What a plan changes in the named lists' sets, without reading a million elements.

A list set whose declaration is live is kept across loads (a rule-only change never
reloads it). What it holds is known from the record of the last apply (the digest of
the list file loaded, `statefile.applied_list`): the same digest means in sync, a new
one means an in-place update computed from the recorded previous contents against the
new file. Only without a record to trust (none, another backend's, an interrupted
apply, or `plan --verify-lists`) are the kernel set's own elements read and compared.

The fast check trusts that nobody edited a list set by hand (`nft add element` into
dockwall's table): a deleted table, set or chain is seen, a hand-edited element only by
`plan --verify-lists`.
"""

from __future__ import annotations

from dockwall.backends.nftables.expr import FAMILY, TABLE
from dockwall.backends.nftables.lists import ListDelta, difference, element_text, list_set_name
from dockwall.backends.nftables.live import listing_objects, nft_output
from dockwall.backends.nftables.view import TableView
from dockwall.compile.ir import AddressSet, Ruleset
from dockwall.runner import Runner
from dockwall.statefile import applied_list

BACKEND = "nftables"
READ_TIMEOUT = 900.0


def kept_lists(ruleset: Ruleset, desired: TableView, live: TableView | None) -> set[str]:
    """The list sets that stay in the kernel: live with the declaration wanted."""
    if live is None:
        return set()
    names = {list_set_name(found.name, family) for found in ruleset.lists for family in (4, 6)}
    return {
        name
        for name in names
        if name in live.sets and live.sets[name].declaration == desired.sets[name].declaration
    }


def list_deltas(ruleset: Ruleset, kept: set[str], runner: Runner) -> list[ListDelta]:
    """The element changes of every list set; none for a set in sync."""
    found: list[ListDelta] = []
    for listed in ruleset.lists:
        found += one_list(listed, kept, runner)
    return [d for d in found if d.added or d.removed]


def one_list(listed: AddressSet, kept: set[str], runner: Runner) -> list[ListDelta]:
    """A kept set of a list whose digest is the one last applied is in sync; any other
    kept set is updated in place: by the change read with the file when it was read
    against the recorded digest (ListChange), else from the recorded (else the
    kernel's) elements."""
    record = applied_list(listed.name, BACKEND)
    trusted = record is not None and record.digest == listed.digest
    change = listed.change if record is not None and not trusted else None
    if change is not None and record is not None and change.base != record.digest:
        change = None
    previous = record.elements() if record is not None and not trusted and change is None else None
    found: list[ListDelta] = []
    for family, index in ((4, 0), (6, 1)):
        name = list_set_name(listed.name, family)
        if name not in kept:
            found.append(fresh(listed, family))
            continue
        if trusted:
            continue
        if change is not None:
            size = len(listed.elements(family))
            found.append(ListDelta(name, change.removed(family), change.added(family), size))
            continue
        before = frozenset(previous[index]) if previous else kernel_elements(runner, name)
        delta = difference(name, before, listed.elements(family))
        if delta is not None:
            found.append(delta)
    return found


def fresh(listed: AddressSet, family: int) -> ListDelta:
    """A set created by this load: every element added."""
    elements = listed.elements(family)
    return ListDelta(list_set_name(listed.name, family), (), elements, len(elements), fresh=True)


def kernel_elements(runner: Runner, name: str) -> frozenset[str]:
    """The elements a list set holds now, read from the kernel (the slow, sure way: a
    million elements take nft seconds on a quiet machine, half a minute on a busy one)."""
    argv = ("nft", "-j", "list", "set", FAMILY, TABLE, name)
    listed = nft_output(runner, argv, timeout=READ_TIMEOUT)
    return frozenset(
        element_text(value)
        for obj in listing_objects(listed)
        if "set" in obj
        for value in obj["set"].get("elem", ())
    )
