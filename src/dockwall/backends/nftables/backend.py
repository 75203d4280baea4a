"""The nftables backend: one table of dockwall's own, replaced whole in one transaction."""

from __future__ import annotations

import json

from dockwall.backends.base import Plan, RuleCounter
from dockwall.backends.nftables.detect import nft_tables
from dockwall.backends.nftables.expr import FAMILY, TABLE, Json, table_ref
from dockwall.backends.nftables.fqdn import carried_elements
from dockwall.backends.nftables.lists import (
    list_changes,
    list_deltas,
    split_lists,
    update_script,
)
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
        self.live_elements: dict[str, frozenset[str]] = {}

    def plan(self, ruleset: Ruleset) -> Plan:
        """The learned addresses of name rules ride along in the replace (`carried`)."""
        with gc_paused():
            objects = live_objects(self.runner)
            live = self.view_of(objects)
        if live is not None and not owned(live):
            raise DockwallError(
                f"table {FAMILY} {TABLE} exists but is not dockwall's (it has no chain "
                f"{OWNED}); dockwall never replaces it: rename or delete that table, or use "
                "--backend iptables"
            )
        with gc_paused():
            commands = render(ruleset, carried_elements(objects or []))
            structure, wanted = split_lists(added_objects(commands))
            desired = table_view(structure)
            found = table_changes(desired, live)
            deltas = list_deltas(wanted, self.live_elements)
            if not found and not deltas:
                return Plan(self.name)
            if not found:
                update = Load(SCRIPT_ARGV, update_script(deltas))
                changes = tuple(list_changes(deltas, True))
                return Plan(self.name, changes, Transaction(rules=(update,)))
            changes = (*found, *list_changes(deltas, False))
            return Plan(self.name, changes, Transaction(rules=(load(commands, desired),)))

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
        """None when the table is absent: then there is nothing to read or describe.
        The named lists' elements are kept aside as strings (`live_elements`): a list of
        a million elements is compared as two sets of strings, not as a view."""
        with gc_paused():
            return self.view_of(live_objects(self.runner))

    def view_of(self, objects: list[Json] | None) -> TableView | None:
        """The live table without the named lists' elements, which go to `live_elements`."""
        if objects is None:
            self.live_elements = {}
            return None
        structure, self.live_elements = split_lists(objects)
        return table_view(structure)


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
