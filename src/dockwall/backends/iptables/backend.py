"""Plans and applies the iptables backend, one atomic iptables-restore per family.

Only chains dockwall created (each carries the exact mark `ownership.OWNED` as its first
rule) are ever written, plus one marked jump from DOCKER-USER and one from INPUT. Where
Docker made no DOCKER-USER (ip6tables under Docker 20.10), dockwall creates it and hooks
it from FORWARD, marked so reset can undo exactly that (`hooks`). Chains and rules of
anyone else, whatever they are called or commented, are never deleted, edited or moved.

Long address lists live in ipset sets named dockwall-*. A plan's transaction creates the
new sets before any rule names them, loads each family's iptables-restore (side by side),
then destroys the sets no rule names any more; a failed load destroys the new sets again.
"""

from __future__ import annotations

from typing import Literal

from dockwall.backends.base import Change, Plan, RuleCounter
from dockwall.backends.iptables import ipsets
from dockwall.backends.iptables.basechains import BaseChains
from dockwall.backends.iptables.detect import FAMILIES, Family, Variant, detect
from dockwall.backends.iptables.hooks import Names, after_hooks, live_names
from dockwall.backends.iptables.ipsets import DestroySets, IpSet
from dockwall.backends.iptables.live import FilterTable, live_table, live_tables
from dockwall.backends.iptables.ownership import ours, renamed
from dockwall.backends.iptables.plan import chain_changes, hook_changes, set_names
from dockwall.backends.iptables.render import render
from dockwall.backends.iptables.script import apply_script, desired_table, reset_script, script
from dockwall.backends.transaction import Load, Step, Transaction
from dockwall.compile.ir import Ruleset
from dockwall.runner import Runner


class IptablesBackend:
    name = "iptables"

    def __init__(self, runner: Runner, variant: Variant | None = None) -> None:
        self.runner = runner
        self.variant = variant or detect(runner)

    def live(self, family: Family) -> FilterTable:
        return live_table(self.runner, self.variant, family)

    def plan(self, ruleset: Ruleset) -> Plan:
        changes: list[Change] = []
        loads: dict[Family, Load] = {}
        wanted: dict[str, IpSet] = {}
        tables = live_tables(self.runner, self.variant)
        for family, live in zip(FAMILIES, tables, strict=True):
            rendered = render(ruleset, family)
            wanted.update(rendered.sets)
            desired = renamed(rendered.chains, live)
            names = Names.of(desired)
            diff = chain_changes(family, live, desired) + hook_changes(family, live, names)
            if diff:
                changes += diff
                loads[family] = self.load(family, live, desired, names)
        return self.with_sets(changes, loads, wanted, set_names(tables))

    def plan_reset(self) -> Plan:
        changes: list[Change] = []
        loads: dict[Family, Load] = {}
        tables = live_tables(self.runner, self.variant)
        for family, live in zip(FAMILIES, tables, strict=True):
            lines, diff = reset_script(family, live)
            if diff:
                changes += diff
                loads[family] = Load(tuple(self.variant.restore(family)), script(lines))
        return self.with_sets(changes, loads, {}, set_names(tables))

    def with_sets(
        self,
        changes: list[Change],
        loads: dict[Family, Load],
        wanted: dict[str, IpSet],
        referenced: set[str],
    ) -> Plan:
        """The ipset steps around the loads: missing (or altered) sets are loaded before
        any rule names them, ours that no rule will name go afterwards, and the ones that
        did not exist go again if the apply fails. Only sets proven ours are touched
        (`ipsets.ours`)."""
        live = ipsets.ours(ipsets.live_sets(self.runner), referenced, set(wanted))
        create = [s for s in wanted.values() if not s.matches(live.get(s.name))]
        stale = tuple(name for name in live if name not in wanted)
        before_changes, after_changes = ipsets.set_changes(
            create, {name: live[name] for name in stale}, live
        )
        before: list[Step] = []
        fail: list[Step] = []
        if create:
            before.append(Load(ipsets.CREATE_ARGV, ipsets.create_script(create, live)))
            fresh = tuple(s.name for s in create if s.name not in live)
            fail += [DestroySets(fresh)] if fresh else []
        after: list[Step] = [DestroySets(stale)] if stale else []
        before += self.base_chains("prepare", list(loads))
        after += self.base_chains("tidy", list(FAMILIES) if loads else [])
        transaction = Transaction(tuple(before), tuple(loads.values()), tuple(after), tuple(fail))
        return Plan(self.name, (*before_changes, *changes, *after_changes), transaction)

    def base_chains(self, action: Literal["prepare", "tidy"], families: list[Family]) -> list[Step]:
        """iptables-nft would create the base chains our hooks go into and keep them."""
        if self.variant.kind != "nft":
            return []
        return [BaseChains(action, family) for family in families]

    def load(
        self, family: Family, live: FilterTable, desired: dict[str, list[str]], names: Names
    ) -> Load:
        """The load, and its undo: our chains as they are now (or none at all)."""
        now = {chain: live.rules(chain) for chain in ours(live)}
        after = after_hooks(FilterTable({**live.chains, **desired_table(desired)}), names)
        undo = apply_script(after, now, live_names(live)) if now else reset_script(family, after)[0]
        return Load(
            tuple(self.variant.restore(family)),
            script(apply_script(live, desired, names)),
            script(undo),
        )

    def apply(self, plan: Plan) -> None:
        plan.transaction.run(self.runner)

    def counters(self) -> list[RuleCounter]:
        return [
            RuleCounter(family, rule.chain, rule.text, rule.packets, rule.bytes)
            for family in FAMILIES
            for table in [self.live(family)]
            for chain in ours(table)
            for rule in table.chains[chain]
        ]

    def installed(self) -> bool:
        return any(ours(self.live(family)) for family in FAMILIES)
