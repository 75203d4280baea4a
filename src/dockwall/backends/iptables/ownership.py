"""Which chains and rules in the filter table are dockwall's: proven, never guessed.

A chain is dockwall's when its first rule is the exact mark OWNED, which dockwall writes
into every chain it creates. A chain someone emptied (`iptables -F`) lost its mark; it
still counts as dockwall's when it is empty, named exactly as dockwall names its chains,
and jumped to by dockwall's own rules and by nothing else, so refilling or removing it
can neither drop a rule of anyone else nor fail. A rule outside those chains is
dockwall's only when it is exactly `-m comment --comment dockwall -j CHAIN` to one of
them (a hook).

Everything else (a user chain named DOCKWALL-MINE, a rule commented `dockwall-test`) is
someone else's and is never deleted, edited or moved. When a name dockwall needs is
taken by such a chain, dockwall uses the next free variant of its prefix instead
(DOCKWALL1-..., up to DOCKWALL9-).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dockwall.backends.iptables.live import FilterTable
from dockwall.errors import DockwallError

MARK = "-m comment --comment dockwall"
OWNED = "-m comment --comment dockwall-chain"
PREFIX = "DOCKWALL-"
VARIANTS = ("DOCKWALL-", *(f"DOCKWALL{n}-" for n in range(1, 10)))
NAME_SCHEME = re.compile(
    r"DOCKWALL[1-9]?-(FORWARD|INPUT|DEFAULT-I|DEFAULT-E|PEERS|UNSEEN-I|UNSEEN-E|[IE]-[0-9a-f]{12,16})"
)
TARGET = re.compile(r"(?:^| )-[jg] (\S+)$")


def hook(chain: str) -> str:
    return f"{MARK} -j {chain}"


def target(rule: str) -> str | None:
    """The chain a rule jumps or goes to (its last word after -j/-g)."""
    found = TARGET.search(rule)
    return found[1] if found else None


def marked(table: FilterTable) -> set[str]:
    return {name for name, rules in table.chains.items() if rules[:1] and rules[0].text == OWNED}


def ours(table: FilterTable) -> list[str]:
    """dockwall's chains, in the table's order."""
    mine = marked(table)
    referrers: dict[str, set[bool]] = {}
    for name, rules in table.chains.items():
        for rule in rules:
            jumped = target(rule.text)
            if jumped is not None:
                by_us = name in mine or rule.text == hook(jumped)
                referrers.setdefault(jumped, set()).add(by_us)
    emptied = {
        name
        for name, rules in table.chains.items()
        if not rules and NAME_SCHEME.fullmatch(name) and referrers.get(name) == {True}
    }
    return [name for name in table.chains if name in mine or name in emptied]


def is_hook(table: FilterTable, rule: str, mine: Iterable[str]) -> bool:
    """Exactly our mark and a jump to one of our chains: `--comment dockwall-test` or a
    jump of ours to someone else's chain never is."""
    jumped = target(rule)
    return jumped is not None and rule == hook(jumped) and jumped in set(mine)


def free_name(name: str, taken: set[str]) -> str:
    """`name` if no one else has it, else the first variant of its prefix that is free."""
    if name not in taken:
        return name
    rest = name.removeprefix(PREFIX)
    for prefix in VARIANTS[1:]:
        candidate = prefix + rest
        if candidate not in taken:
            return candidate
    raise DockwallError(
        f"chain {name} and all its variants (DOCKWALL1- to DOCKWALL9-) belong to someone "
        "else in the filter table; dockwall never touches them: rename or remove some"
    )


def renamed(desired: dict[str, list[str]], table: FilterTable) -> dict[str, list[str]]:
    """The desired chains under names no one else uses, jumps and gotos following."""
    taken = set(table.chains) - set(ours(table))
    names = {name: free_name(name, taken) for name in desired}
    if all(old == new for old, new in names.items()):
        return desired
    return {names[name]: [retarget(r, names) for r in rules] for name, rules in desired.items()}


def retarget(rule: str, names: dict[str, str]) -> str:
    jumped = target(rule)
    if jumped is None or names.get(jumped, jumped) == jumped:
        return rule
    return rule[: -len(jumped)] + names[jumped]
