"""The nftables backend: one table of dockwall's own, replaced whole in one transaction."""

from __future__ import annotations

import json

from dockwall.backends.base import Plan, RuleCounter
from dockwall.backends.nftables.detect import nft_tables
from dockwall.backends.nftables.expr import FAMILY, TABLE, Json, table_ref
from dockwall.backends.nftables.live import live_objects, rule_counters
from dockwall.backends.nftables.plan import table_changes
from dockwall.backends.nftables.render import OWNED, render
from dockwall.backends.nftables.script import NotScriptable, script
from dockwall.backends.nftables.view import TableView, table_view
from dockwall.backends.transaction import Load, Transaction
from dockwall.compile.ir import Ruleset
from dockwall.errors import DockwallError
from dockwall.gcpause import gc_paused
from dockwall.runner import Runner

LOAD_ARGV = ("nft", "-j", "-f", "-")
SCRIPT_ARGV = ("nft", "-f", "-")


class NftablesBackend:
    """Never touches another table and never flushes the ruleset: Docker's rules stay put."""

    name = "nftables"

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def plan(self, ruleset: Ruleset) -> Plan:
        live = self.live_view()
        if live is not None and not owned(live):
            raise DockwallError(
                f"table {FAMILY} {TABLE} exists but is not dockwall's (it has no chain "
                f"{OWNED}); dockwall never replaces it: rename or delete that table, or use "
                "--backend iptables"
            )
        with gc_paused():
            commands = render(ruleset)
            desired = table_view(added_objects(commands))
            found = table_changes(desired, live)
            if not found:
                return Plan(self.name)
            return Plan(self.name, tuple(found), Transaction(rules=(load(commands, desired),)))

    def plan_reset(self) -> Plan:
        live = self.live_view()
        if live is None or not owned(live):
            return Plan(self.name)
        table = {"table": table_ref()}
        return Plan(
            self.name,
            tuple(table_changes(None, live)),
            Transaction(rules=(json_load([{"add": table}, {"delete": table}]),)),
        )

    def apply(self, plan: Plan) -> None:
        plan.transaction.run(self.runner)

    def counters(self) -> list[RuleCounter]:
        objects = live_objects(self.runner)
        return rule_counters(objects) if objects is not None else []

    def installed(self) -> bool:
        if (FAMILY, TABLE) not in nft_tables(self.runner):
            return False
        live = self.live_view()
        return live is not None and owned(live)

    def live_view(self) -> TableView | None:
        """None when the table is absent: then there is nothing to read or describe."""
        with gc_paused():
            objects = live_objects(self.runner)
            return table_view(objects) if objects is not None else None


def owned(live: TableView) -> bool:
    return OWNED in live.chains


def added_objects(commands: list[Json]) -> list[Json]:
    """What a replace transaction creates inside the table (the table itself aside)."""
    return [c["add"] for c in commands if "add" in c and "table" not in c["add"]]


def load(commands: list[Json], desired: TableView) -> Load:
    """As an nft script, which nft parses twice as fast, unless something in the table is
    outside what the script writer knows: then as the JSON document, which holds anything."""
    try:
        return Load(SCRIPT_ARGV, script(commands, desired))
    except NotScriptable:
        return json_load(commands)


def json_load(commands: list[Json]) -> Load:
    return Load(LOAD_ARGV, json.dumps({"nftables": commands}, separators=(",", ":")))
