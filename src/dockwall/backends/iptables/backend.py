"""Plans and applies the iptables backend, one atomic iptables-restore per family.

Only chains dockwall created (each carries the exact mark `ownership.OWNED` as its first
rule) are ever written, plus one marked jump from DOCKER-USER and one from INPUT. Where
Docker made no DOCKER-USER (ip6tables under Docker 20.10), dockwall creates it and hooks
it from FORWARD, marked so reset can undo exactly that (`hooks`). Chains and rules of
anyone else, whatever they are called or commented, are never deleted, edited or moved.

Long address lists live in ipset sets named dockwall-*. A plan's transaction creates the
new sets before any rule names them, loads each family's iptables-restore (side by side),
then destroys the sets no rule names any more; a failed load destroys the new sets again.
Named lists' sets (dwl-*) are read by header only and updated in place (`listsync`),
against `recorded`: what this backend last loaded into them, from the state file.
"""

from __future__ import annotations

from typing import Literal

from dockwall.backends.base import Change, Plan, RuleCounter
from dockwall.backends.iptables import fqdn, ipsets, listsync, setread
from dockwall.backends.iptables.basechains import BaseChains
from dockwall.backends.iptables.detect import FAMILIES, Family, Variant, detect
from dockwall.backends.iptables.hooks import Names, after_hooks, live_names
from dockwall.backends.iptables.ipsets import DestroySets, IpSet, LiveSet
from dockwall.backends.iptables.listsync import ListStep, Recorded, no_record
from dockwall.backends.iptables.live import FilterTable, live_table, live_tables
from dockwall.backends.iptables.ownership import ours, renamed
from dockwall.backends.iptables.plan import chain_changes, hook_changes, set_names
from dockwall.backends.iptables.render import render
from dockwall.backends.iptables.script import apply_script, desired_table, reset_script, script
from dockwall.backends.transaction import Load, Step, Transaction
from dockwall.compile.ir import AddressSet, Ruleset
from dockwall.runner import Runner


class IptablesBackend:
    name = "iptables"

    def __init__(
        self, runner: Runner, variant: Variant | None = None, recorded: Recorded = no_record
    ) -> None:
        self.runner = runner
        self.variant = variant or detect(runner)
        self.recorded = recorded

    def live(self, family: Family) -> FilterTable:
        return live_table(self.runner, self.variant, family)

    def plan(self, ruleset: Ruleset, deep: bool = False) -> Plan:
        """`deep` reads every named list's set and compares it element by element,
        instead of trusting its header and the record of what was loaded into it."""
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
        wants_dns = ruleset.dns is not None or any(fqdn.redirected(t) for t in tables)
        dns = self.dns_steps(ruleset) if wants_dns else fqdn.DnsSteps()
        return self.with_sets(changes, loads, wanted, set_names(tables), dns, deep)

    def dns_steps(self, ruleset: Ruleset) -> fqdn.DnsSteps:
        """Learned sets created before the loads (rules name them), the nat redirect
        loaded after them (their INPUT rules accept what it redirects). Only read when
        DNS is wanted or our INPUT chain shows it was: otherwise there is nothing."""
        created, step = fqdn.create_step(self.runner, ruleset)
        found = fqdn.DnsSteps(list(created), [step] if step else [], [])
        for family in FAMILIES:
            diff, nat = fqdn.nat_plan(self.runner, self.variant, ruleset, family)
            found.changes += diff
            found.after += [nat] if nat else []
        return found

    def plan_reset(self) -> Plan:
        changes: list[Change] = []
        loads: dict[Family, Load] = {}
        tables = live_tables(self.runner, self.variant)
        for family, live in zip(FAMILIES, tables, strict=True):
            lines, diff = reset_script(family, live)
            if diff:
                changes += diff
                loads[family] = Load(tuple(self.variant.restore(family)), script(lines))
        dns = self.dns_steps(Ruleset((), (), None, None))
        referenced = set_names(tables)
        learned = [n for n in fqdn.learned_names(fqdn.existing(self.runner)) if n in referenced]
        if learned:
            dns.changes += [
                Change("ipv4", "remove", f"ipset {n}", "(learned set)") for n in learned
            ]
            dns.after.append(DestroySets(tuple(learned)))
        return self.with_sets(changes, loads, {}, referenced, dns)

    def with_sets(
        self,
        changes: list[Change],
        loads: dict[Family, Load],
        wanted: dict[str, IpSet],
        referenced: set[str],
        dns: fqdn.DnsSteps | None = None,
        deep: bool = False,
    ) -> Plan:
        """The ipset steps around the loads: missing (or altered) sets are loaded before
        any rule names them, ours that no rule will name go afterwards, and the ones that
        did not exist go again if the apply fails. Only sets proven ours are touched
        (`ipsets.ours`)."""
        sets, records = self.live_sets(wanted, deep)
        live = ipsets.ours(sets, referenced, set(wanted))
        hashed = [s for s in wanted.values() if not s.listed]
        create = [s for s in hashed if not s.matches(live.get(s.name))]
        listed = self.list_steps([s for s in wanted.values() if s.listed], live, records)
        stale = tuple(name for name in live if name not in wanted)
        before_changes, after_changes = ipsets.set_changes(
            create, {name: live[name] for name in stale}, live
        )
        dns = dns or fqdn.DnsSteps()
        before: list[Step] = list(dns.before)
        fail: list[Step] = []
        if create or listed:
            script = ipsets.create_script(create, live) + "".join(s.script() for s in listed)
            before.append(ipsets.set_load(ipsets.CREATE_ARGV, script))
            names = [s.name for s in create] + [s.wanted.name for s in listed]
            fresh = tuple(name for name in names if name not in live)
            fail += [DestroySets(fresh)] if fresh else []
        after: list[Step] = [*dns.after, *([DestroySets(stale)] if stale else [])]
        before += self.base_chains("prepare", list(loads))
        after += self.base_chains("tidy", list(FAMILIES) if loads else [])
        transaction = Transaction(tuple(before), tuple(loads.values()), tuple(after), tuple(fail))
        lines = [s.change() for s in listed]
        found = (*dns.changes, *lines, *before_changes, *changes, *after_changes)
        return Plan(self.name, found, transaction)

    def live_sets(
        self, wanted: dict[str, IpSet], deep: bool
    ) -> tuple[dict[str, LiveSet], dict[str, AddressSet | None]]:
        """Our sets by header, and the records of the lists: members are read of the
        content-named sets, and of the list sets whose header does not vouch for their
        record (all of them when `deep`)."""
        headers = setread.read_headers(self.runner)
        lists = [s for s in wanted.values() if s.listed]
        records = {} if deep else listsync.records(lists, headers, self.recorded)
        unread = listsync.unread(lists, headers, records)
        hashed = [name for name in headers if name.startswith(setread.SET_PREFIX)]
        members = setread.read_members(self.runner, [*hashed, *unread])
        return ipsets.live_sets(headers, members), records

    def list_steps(
        self, lists: list[IpSet], live: dict[str, LiveSet], records: dict[str, AddressSet | None]
    ) -> list[ListStep]:
        found = (
            listsync.list_step(s, live.get(s.name), records.get(listsync.list_name(s.name)))
            for s in lists
        )
        return [step for step in found if step is not None]

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
