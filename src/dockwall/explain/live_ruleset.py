"""Every table the host has, from every tool, indexed by hook for the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockwall.explain.netfilter import Chain, Table

FAMILY_VERSIONS = {"ip": (4,), "ip6": (6,), "inet": (4, 6)}


@dataclass
class LiveRuleset:
    """Tables plus a cached hook index; the index is built on first use. Read from the
    kernel, whoever wrote it: not `compile.ir.Ruleset`, which is what dockwall wants."""

    tables: list[Table]
    _index: dict[tuple[str, int], list[tuple[Table, Chain]]] = field(default_factory=dict)

    def base_chains(self, hook: str, version: int) -> list[tuple[Table, Chain]]:
        """Base chains on `hook` for IP `version`, lowest priority first (stable for ties)."""
        key = (hook, version)
        if key not in self._index:
            found = [
                (table, chain)
                for table in self.tables
                if version in FAMILY_VERSIONS.get(table.family, ())
                for chain in table.chains.values()
                if chain.base is not None and chain.base.hook == hook
            ]
            found.sort(key=lambda pair: pair[1].base.priority if pair[1].base else 0)
            self._index[key] = found
        return self._index[key]

    def rule_count(self) -> int:
        return sum(table.rule_count() for table in self.tables)

    def chain_names(self) -> set[str]:
        return {name for table in self.tables for name in table.chains}
