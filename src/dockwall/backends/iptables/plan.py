"""The readable diff between the chains dockwall wants and the ones in the kernel.

Both sides are compared in iptables-save's canonical spelling (canonical.py), so `plan`
shows nothing when nothing changed, whoever wrote the rule and however.
"""

from __future__ import annotations

from dockwall.backends.base import Change
from dockwall.backends.iptables.canonical import canonical
from dockwall.backends.iptables.detect import Family
from dockwall.backends.iptables.hooks import DOCKER_USER, Names, misplaced
from dockwall.backends.iptables.live import FilterTable
from dockwall.backends.iptables.ownership import hook, ours
from dockwall.backends.linediff import line_changes


def compared(
    before: list[str] | None, after: list[str] | None
) -> tuple[list[str] | None, list[str] | None]:
    """Both sides in iptables-save's canonical spelling (see canonical.py), for the diff.

    The renderer already writes that spelling and the kernel prints it, so a rule found
    word for word on the other side needs no work; only the others are canonicalised
    (a chain of 40,000 rules with two new ones costs two canonical() calls, not 80,000).
    Equal results still mean equal canonical forms, as canonical() is idempotent."""
    if before == after or before is None or after is None:
        return before, after
    mine, theirs = set(before), set(after)
    return (
        [rule if rule in theirs else canonical(rule) for rule in before],
        [rule if rule in mine else canonical(rule) for rule in after],
    )


def same_rules(before: list[str] | None, after: list[str] | None) -> bool:
    first, second = compared(before, after)
    return first == second


def chain_changes(family: Family, live: FilterTable, desired: dict[str, list[str]]) -> list[Change]:
    """A line diff per chain, so a plan reads like `git diff` of the firewall."""
    changes: list[Change] = []
    for chain in [*desired, *(c for c in ours(live) if c not in desired)]:
        before, after = compared(
            live.rules(chain) if chain in live.chains else None, desired.get(chain)
        )
        if before == after:
            continue
        if before is None:
            changes.append(Change(family, "add", chain, "(new chain)"))
        if after is None:
            changes.append(Change(family, "remove", chain, "(chain removed)"))
        changes += line_changes(family, chain, before or [], after or [])
    return changes


def hook_changes(family: Family, live: FilterTable, names: Names) -> list[Change]:
    changes: list[Change] = []
    if DOCKER_USER not in live.chains:
        changes.append(Change(family, "add", DOCKER_USER, "(new chain: Docker made none)"))
    for h in misplaced(live, names):
        count = live.rules(h.chain).count(h.jump)
        if not h.wanted:
            why = (
                "(Docker jumps to DOCKER-USER itself now)"
                if h.jump == hook(DOCKER_USER)
                else "(chain no longer in use)"
            )
            changes += [Change(family, "remove", h.chain, f"{h.jump} {why}")] * count
        elif count == 0:
            changes.append(Change(family, "add", h.chain, f"{h.jump} (first rule)"))
        else:
            changes.append(Change(family, "add", h.chain, f"{h.jump} (moved back to first rule)"))
    return changes


def set_names(tables: list[FilterTable]) -> set[str]:
    """The ipset sets our own chains match against."""
    return {
        word
        for table in tables
        for chain in ours(table)
        for rule in table.rules(chain)
        if "--match-set " in rule
        for word in [rule.split("--match-set ", 1)[1].split(" ", 1)[0]]
    }
