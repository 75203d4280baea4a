"""The nftables backend: one table of dockwall's own, replaced in one transaction (all of
it, or all but the named lists' sets, which keep their elements across rule changes)."""

from __future__ import annotations

import json
from dataclasses import replace

from dockwall.backends.base import Plan, RuleCounter
from dockwall.backends.nftables.detect import nft_tables
from dockwall.backends.nftables.expr import FAMILY, TABLE, Json, table_ref
from dockwall.backends.nftables.fqdn import carried_elements
from dockwall.backends.nftables.listplan import kept_lists, list_deltas
from dockwall.backends.nftables.lists import (
    bare,
    is_list_set,
    list_changes,
    load_timeout,
    update_script,
)
from dockwall.backends.nftables.live import (
    rule_counters,
    set_object,
    table_objects,
    terse_objects,
)
from dockwall.backends.nftables.plan import table_changes
from dockwall.backends.nftables.render import OWNED, render
from dockwall.backends.nftables.script import NotScriptable, keeping_script, script
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
        """The learned addresses of name rules ride along in the replace (`carried`); the
        named lists' sets stay in the kernel when their declaration does, and their
        elements change in place (listplan), so neither side's million elements are
        ever rendered, read or compared as a table."""
        with gc_paused():
            objects = table_objects(self.runner, skip=unread_in_plan)
            live = table_view(objects) if objects is not None else None
        if live is not None and not owned(live):
            raise DockwallError(
                f"table {FAMILY} {TABLE} exists but is not dockwall's (it has no chain "
                f"{OWNED}); dockwall never replaces it: rename or delete that table, or use "
                "--backend iptables"
            )
        with gc_paused():
            commands = render(bare(ruleset), {})
            desired = table_view(added_objects(commands))
            found = table_changes(desired, live)
            kept = kept_lists(ruleset, desired, live)
            deltas = list_deltas(ruleset, kept, self.runner)
            if not found and not deltas:
                return Plan(self.name)
            changes = (*found, *list_changes(deltas))
            if not found:
                update = Load(SCRIPT_ARGV, update_script(deltas), timeout=load_timeout(deltas))
                return Plan(self.name, changes, Transaction(rules=(update,)))
            carried = carried_elements(self.timed_sets(objects or []))
            commands = render(bare(ruleset), carried)
            try:
                text = replacing_script(objects, commands, desired, kept) + update_script(deltas)
                step = Load(SCRIPT_ARGV, text, timeout=load_timeout(deltas))
            except NotScriptable:
                step = replace(json_load(render(ruleset, carried)), timeout=load_timeout(deltas))
            return Plan(self.name, changes, Transaction(rules=(step,)))

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
        objects = terse_objects(self.runner)
        return rule_counters(objects) if objects is not None else []

    def installed(self) -> bool:
        if (FAMILY, TABLE) not in nft_tables(self.runner):
            return False
        objects = terse_objects(self.runner)
        return objects is not None and owned(table_view(objects))

    def timed_sets(self, objects: list[Json]) -> list[Json]:
        """The sets with timeouts (learned addresses) with their elements, read only for
        a plan that replaces the table, which must carry them over."""
        return [set_object(self.runner, obj) for obj in objects if is_timed_set(obj)]

    def live_objects(self) -> list[Json] | None:
        """The live table with every set's elements but the named lists' (see live)."""
        return table_objects(self.runner, skip=is_list_set)

    def live_view(self) -> TableView | None:
        """None when the table is absent: then there is nothing to read or describe."""
        with gc_paused():
            objects = self.live_objects()
            return table_view(objects) if objects is not None else None


def is_timed_set(obj: Json) -> bool:
    body = obj.get("set")
    return isinstance(body, dict) and "timeout" in body.get("flags", [])


def unread_in_plan(obj: Json) -> bool:
    """Sets a plan compares without their elements: the named lists (planned from the
    record of the last apply, listplan) and the sets with timeouts, filled at run time
    by the DNS forwarder and never compared (view.set_view). Listing 10,000 learned
    elements every second was the agent's drift check's main cost, and while it ran the
    forwarder's own writes to those sets waited in the kernel for 15-40 ms."""
    return is_list_set(obj) or is_timed_set(obj)


def replacing_script(
    live: list[Json] | None, commands: list[Json], desired: TableView, kept: set[str]
) -> str:
    """The whole table anew, or, when list sets stay, everything around them."""
    if live is None or not kept:
        return script(commands, desired)
    return keeping_script(live, commands, desired, kept)


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
