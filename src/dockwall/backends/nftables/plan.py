"""The readable diff between the table dockwall wants and the one in the kernel.

The load itself always replaces the whole table; the diff exists for people (`plan`)
and for deciding whether anything needs loading at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from dockwall.backends.base import Change
from dockwall.backends.linediff import line_changes
from dockwall.backends.nftables.expr import FAMILY, TABLE
from dockwall.backends.nftables.view import ChainView, SetView, TableView

TABLE_WHERE = f"table {FAMILY} {TABLE}"


def table_changes(desired: TableView | None, live: TableView | None) -> list[Change]:
    """None stands for a table that is (or must be) absent."""
    found: list[Change] = []
    if live is None and desired is not None:
        found.append(change("add", TABLE_WHERE, TABLE_WHERE))
    want = desired or TableView()
    have = live or TableView()
    for name in sorted(want.sets.keys() | have.sets.keys()):
        found += set_changes(name, want.sets.get(name), have.sets.get(name))
    for name in sorted(want.chains.keys() | have.chains.keys()):
        found += chain_changes(name, want.chains.get(name), have.chains.get(name))
    if desired is None and live is not None:
        found.append(change("remove", TABLE_WHERE, TABLE_WHERE))
    return found


def set_changes(name: str, want: SetView | None, have: SetView | None) -> list[Change]:
    """A changed type means a new set: every element moves. Else only differing elements."""
    existing = want or have
    where = f"{existing.kind if existing else 'set'} {name}"
    if want and have and want.declaration == have.declaration:
        return [
            *changes("remove", where, sorted(have.elements - want.elements)),
            *changes("add", where, sorted(want.elements - have.elements)),
        ]
    found: list[Change] = []
    if have:
        found += changes("remove", where, [have.declaration, *sorted(have.elements)])
    if want:
        found += changes("add", where, [want.declaration, *sorted(want.elements)])
    return found


def chain_changes(name: str, want: ChainView | None, have: ChainView | None) -> list[Change]:
    where = f"chain {name}"
    want_head = chain_head(name, want)
    have_head = chain_head(name, have)
    found: list[Change] = []
    if want_head != have_head:
        found += changes("remove", where, [have_head] if have_head else [])
        found += changes("add", where, [want_head] if want_head else [])
    return found + line_changes(
        FAMILY, where, have.rules if have else (), want.rules if want else ()
    )


def chain_head(name: str, chain: ChainView | None) -> str | None:
    if chain is None:
        return None
    return chain.hook or f"chain {name}"


def changes(op: Literal["add", "remove"], where: str, texts: Iterable[str]) -> list[Change]:
    return [change(op, where, text) for text in texts]


def change(op: Literal["add", "remove"], where: str, text: str) -> Change:
    return Change(family=FAMILY, op=op, where=where, text=text)
