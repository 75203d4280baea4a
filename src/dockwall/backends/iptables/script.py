"""The iptables-restore --noflush scripts: a load, its undo, and reset.

Declaring a chain under --noflush empties it, so a changed chain is rebuilt whole and
an unchanged one is not declared at all (it keeps its counters).
"""

from __future__ import annotations

from dockwall.backends.base import Change
from dockwall.backends.iptables.detect import Family
from dockwall.backends.iptables.hooks import DOCKER_USER, Names, is_created_docker_user, misplaced
from dockwall.backends.iptables.live import FilterTable, LiveRule
from dockwall.backends.iptables.ownership import is_hook, ours
from dockwall.backends.iptables.plan import same_rules


def script(lines: list[str]) -> str:
    return "\n".join(["*filter", *lines, "COMMIT", ""])


def desired_table(desired: dict[str, list[str]]) -> dict[str, list[LiveRule]]:
    return {c: [LiveRule(c, r) for r in rules] for c, rules in desired.items()}


def apply_script(live: FilterTable, desired: dict[str, list[str]], names: Names) -> list[str]:
    """Each changed chain rebuilt whole; stale chains of ours emptied and deleted; our
    hooks put (back) at the top of the chains they belong in."""
    changed = {
        c: rules
        for c, rules in desired.items()
        if c not in live.chains or not same_rules(live.rules(c), rules)
    }
    lines = [f":{chain} - [0:0]" for chain in changed]
    stale = [c for c in ours(live) if c not in desired]
    lines += [f":{chain} - [0:0]" for chain in stale]
    if DOCKER_USER not in live.chains:
        lines.append(f":{DOCKER_USER} - [0:0]")
    for h in misplaced(live, names):
        lines += h.script(live)
    lines += [f"-A {chain} {rule}" for chain, rules in changed.items() for rule in rules]
    lines += [f"-X {chain}" for chain in stale]
    return lines


def reset_script(family: Family, live: FilterTable) -> tuple[list[str], list[Change]]:
    """Remove our hooks and chains; drop the DOCKER-USER we created if nothing else uses
    it. Only exact hooks to our own chains go: any other rule stays, whatever its comment."""
    lines: list[str] = []
    changes: list[Change] = []
    mine = ours(live)
    created_docker_user = is_created_docker_user(live)
    targets = [*mine, DOCKER_USER]
    for chain, rules in live.chains.items():
        if chain in mine:
            continue
        for rule in dict.fromkeys(r.text for r in rules):
            if is_hook(live, rule, targets):
                lines += [f"-D {chain} {rule}"] * live.rules(chain).count(rule)
                changes.append(Change(family, "remove", chain, rule))
    leftover = [r for r in live.rules(DOCKER_USER) if not is_hook(live, r, mine)]
    chains = mine + ([DOCKER_USER] if created_docker_user and not leftover else [])
    lines += [f":{chain} - [0:0]" for chain in mine]
    lines += [f"-X {chain}" for chain in chains]
    changes += [Change(family, "remove", chain, "(chain removed)") for chain in chains]
    return lines, changes
