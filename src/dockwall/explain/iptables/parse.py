"""iptables-save / ip6tables-save text into the typed model.

Every table is read, whoever wrote its rules. One cheap pass splits the dump into
tables and chains and keeps each chain's rule lines as text; a chain's lines are
parsed into rules (`iptables_rule`) when its `rules` are first read. `lazy=False`
parses every chain at once, so a malformed line is an error straight away; `explain`
reads lazily, because a packet enters only a few of a big host's chains.
"""

from __future__ import annotations

from dockwall.errors import DockwallError
from dockwall.explain.iptables.matches import RulesetParseError
from dockwall.explain.iptables.rule import MEMO, clear_memo, parse_rules
from dockwall.explain.netfilter import BaseHook, Chain, Family, Origin, Rule, Table
from dockwall.gcpause import gc_paused

__all__ = ["BUILTIN_HOOKS", "MEMO", "RulesetParseError", "clear_memo", "parse_iptables_save"]

BUILTIN_HOOKS: dict[tuple[str, str], BaseHook] = {
    ("raw", "PREROUTING"): BaseHook("prerouting", -300, "filter"),
    ("raw", "OUTPUT"): BaseHook("output", -300, "filter"),
    ("mangle", "PREROUTING"): BaseHook("prerouting", -150, "filter"),
    ("mangle", "INPUT"): BaseHook("input", -150, "filter"),
    ("mangle", "FORWARD"): BaseHook("forward", -150, "filter"),
    ("mangle", "OUTPUT"): BaseHook("output", -150, "route"),
    ("mangle", "POSTROUTING"): BaseHook("postrouting", -150, "filter"),
    ("nat", "PREROUTING"): BaseHook("prerouting", -100, "nat"),
    ("nat", "INPUT"): BaseHook("input", 100, "nat"),
    ("nat", "OUTPUT"): BaseHook("output", -100, "nat"),
    ("nat", "POSTROUTING"): BaseHook("postrouting", 100, "nat"),
    ("filter", "INPUT"): BaseHook("input", 0, "filter"),
    ("filter", "FORWARD"): BaseHook("forward", 0, "filter"),
    ("filter", "OUTPUT"): BaseHook("output", 0, "filter"),
    ("security", "INPUT"): BaseHook("input", 50, "filter"),
    ("security", "FORWARD"): BaseHook("forward", 50, "filter"),
    ("security", "OUTPUT"): BaseHook("output", 50, "filter"),
}


class RuleLines:
    """A chain's rule lines (from `-A` on) and their line numbers, parsed on demand."""

    __slots__ = ("numbers", "table", "texts", "version")

    def __init__(self, table: Table, version: int) -> None:
        self.table = table
        self.version = version
        self.numbers: list[int] = []
        self.texts: list[str] = []

    def __len__(self) -> int:
        return len(self.texts)

    def parse(self) -> list[Rule]:
        chains = self.table.chains
        version = self.version
        rules: list[Rule] = []
        try:
            with gc_paused():
                parse_rules(self.texts, version, chains, rules)
        except (DockwallError, ValueError) as exc:
            number = self.numbers[len(rules)]
            raise RulesetParseError(f"{self.table.label} line {number}: {exc}") from exc
        return rules


def parse_iptables_save(
    text: str, version: int, origin: Origin, *, lazy: bool = False
) -> list[Table]:
    """All tables in one iptables-save (version 4) or ip6tables-save (version 6) dump."""
    tables = split_tables(text, version, origin)
    if not lazy:
        for table in tables:
            for chain in table.chains.values():
                chain.rules  # noqa: B018 - reading `rules` parses the chain
    return tables


def split_tables(text: str, version: int, origin: Origin) -> list[Table]:
    """Tables and chains, each chain holding its rule lines unparsed."""
    family: Family = "ip" if version == 4 else "ip6"
    tables: list[Table] = []
    table: Table | None = None
    pending: dict[str, RuleLines] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        try:
            if line[0] == "*":
                table = Table(family, line[1:], origin)
                tables.append(table)
                pending = {}
            elif line == "COMMIT":
                table = None
            elif table is None:
                raise RulesetParseError(f"{line!r} outside of a table")
            elif line[0] == ":":
                lines = RuleLines(table, version)
                name = add_chain(table, line, lines)
                pending[name] = lines
            else:
                rule = rule_text(line)
                found = pending.get(chain_name(rule))
                if found is None:
                    raise RulesetParseError(f"rule for undeclared chain {chain_name(rule)!r}")
                found.numbers.append(number)
                found.texts.append(rule)
        except DockwallError as exc:
            raise RulesetParseError(
                f"{table.label if table else family} line {number}: {exc}"
            ) from exc
    return tables


def add_chain(table: Table, line: str, lines: RuleLines) -> str:
    """`:NAME POLICY [p:b]`; built-in chains become base chains with their hook."""
    parts = line[1:].split()
    if len(parts) < 2:
        raise RulesetParseError(f"expected `:CHAIN POLICY`, got {line!r}")
    name, policy = parts[:2]
    base = BUILTIN_HOOKS.get((table.name, name))
    if base is not None and policy in ("ACCEPT", "DROP"):
        base = BaseHook(
            base.hook, base.priority, base.type, "drop" if policy == "DROP" else "accept"
        )
    table.chains[name] = Chain(name, base=base, pending=lines)
    return name


def rule_text(line: str) -> str:
    """The rule from `-A` on: iptables-save -c puts `[packets:bytes]` before it."""
    if line[0] == "[":
        _, _, line = line.partition("] ")
    if not line.startswith("-A "):
        raise RulesetParseError(f"expected `-A CHAIN ...`, got {line!r}")
    return line


def chain_name(rule: str) -> str:
    end = rule.find(" ", 3)
    return rule[3:] if end < 0 else rule[3:end]
