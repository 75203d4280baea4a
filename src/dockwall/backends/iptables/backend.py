"""Plans and applies the iptables backend, one atomic iptables-restore per family.

Only chains dockwall created (each carries the exact mark `ownership.OWNED` as its first
rule) are ever written, plus one marked jump from DOCKER-USER and one from INPUT. Where
Docker made no DOCKER-USER (ip6tables under Docker 20.10), dockwall creates it and hooks
it from FORWARD, marked so reset can undo exactly that. Chains and rules of anyone else,
whatever they are called or commented, are never deleted, edited or moved.

Long address lists live in ipset sets named dockwall-*. A plan's transactions run in
order: one `ipset restore` creating the new sets, the iptables-restore of each family
(side by side), then one destroying the sets no rule uses any more.
"""

from __future__ import annotations

import difflib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dockwall.backends.base import Change, Plan, RuleCounter, Transaction
from dockwall.backends.iptables import basechains, ipsets
from dockwall.backends.iptables.canonical import canonical
from dockwall.backends.iptables.ipsets import IpSet
from dockwall.backends.iptables.ownership import hook, is_hook, ours, renamed, target
from dockwall.backends.iptables.render import FORWARD, INPUT, render
from dockwall.backends.iptables.ruleset import FilterTable, LiveRule, parse_filter
from dockwall.backends.iptables.variant import Family, Variant, detect
from dockwall.compile.ir import Ruleset
from dockwall.runner import Runner

FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")
MATCH_SET = re.compile(r"--match-set (\S+)")
DOCKER_USER = "DOCKER-USER"


@dataclass(frozen=True)
class Hook:
    """One jump of ours in someone else's chain. It must be that chain's first rule:
    Docker inserts its own rules at the top when it starts, which would push a jump of
    ours below Docker's ACCEPTs, where it never sees a packet."""

    chain: str
    jump: str
    wanted: bool = True

    def in_place(self, live: FilterTable) -> bool:
        rules = live.rules(self.chain)
        return rules[:1] == [self.jump] and rules.count(self.jump) == 1

    def script(self, live: FilterTable) -> list[str]:
        """Deletes every copy, then inserts one at the top (when wanted)."""
        lines = [f"-D {self.chain} {self.jump}"] * live.rules(self.chain).count(self.jump)
        return lines + ([f"-I {self.chain} 1 {self.jump}"] if self.wanted else [])


def hooks(live: FilterTable, names: Names) -> list[Hook]:
    """FORWARD->DOCKER-USER is ours only while Docker has no jump of its own at the top.
    A hook to one of our chains that is no longer the one in use goes."""
    docker_jumps_first = live.rules("FORWARD")[:1] == [f"-j {DOCKER_USER}"]
    wanted = [
        Hook("FORWARD", hook(DOCKER_USER), wanted=not docker_jumps_first),
        Hook(DOCKER_USER, hook(names.forward)),
        Hook("INPUT", hook(names.input)),
    ]
    mine = ours(live)
    kept = {(h.chain, h.jump) for h in wanted}
    stale = [
        Hook(chain, rule, wanted=False)
        for chain in ("FORWARD", DOCKER_USER, "INPUT")
        for rule in dict.fromkeys(live.rules(chain))
        if (chain, rule) not in kept and is_hook(live, rule, mine)
    ]
    return wanted + stale


def misplaced(live: FilterTable, names: Names) -> list[Hook]:
    return [
        h
        for h in hooks(live, names)
        if (h.wanted and not h.in_place(live)) or (not h.wanted and h.jump in live.rules(h.chain))
    ]


@dataclass(frozen=True)
class Names:
    """The chains the hooks jump to: FORWARD and INPUT, or their free variants."""

    forward: str = FORWARD
    input: str = INPUT

    @staticmethod
    def of(desired: dict[str, list[str]]) -> Names:
        """The first two chains of a rendered (and renamed) family are FORWARD and INPUT."""
        forward, input_, *_ = desired
        return Names(forward, input_)


class IptablesBackend:
    name = "iptables"

    def __init__(self, runner: Runner, variant: Variant | None = None) -> None:
        self.runner = runner
        self.variant = variant or detect(runner)

    def live_tables(self) -> list[FilterTable]:
        """Both families read side by side: on the agent's path every millisecond counts."""
        with ThreadPoolExecutor(max_workers=len(FAMILIES)) as pool:
            return list(pool.map(self.live, FAMILIES))

    def live(self, family: Family) -> FilterTable:
        argv = [*self.variant.save(family), "-c", "-t", "filter"]
        return parse_filter(self.runner.run(argv).stdout)

    def plan(self, ruleset: Ruleset) -> Plan:
        changes: list[Change] = []
        transactions: list[Transaction] = []
        wanted: dict[str, IpSet] = {}
        tables = self.live_tables()
        for family, live in zip(FAMILIES, tables, strict=True):
            rendered = render(ruleset, family)
            wanted.update(rendered.sets)
            desired = renamed(rendered.chains, live)
            names = Names.of(desired)
            diff = chain_changes(family, live, desired) + hook_changes(family, live, names)
            if diff:
                changes += diff
                transactions.append(self.transaction(family, live, desired, names))
        plan = Plan(self.name, tuple(changes), tuple(transactions))
        return self.with_sets(plan, wanted, set_names(tables))

    def plan_reset(self) -> Plan:
        changes: list[Change] = []
        transactions: list[Transaction] = []
        tables = self.live_tables()
        for family, live in zip(FAMILIES, tables, strict=True):
            lines, diff = reset_script(family, live)
            if diff:
                changes += diff
                transactions.append(Transaction(tuple(self.variant.restore(family)), script(lines)))
        plan = Plan(self.name, tuple(changes), tuple(transactions))
        return self.with_sets(plan, {}, set_names(tables))

    def with_sets(self, plan: Plan, wanted: dict[str, IpSet], referenced: set[str]) -> Plan:
        """Adds the ipset steps around the iptables ones: missing (or altered) sets are
        loaded before any rule names them, ours that no rule will name go afterwards.
        Only sets proven ours are touched (`ipsets.ours`)."""
        live = ipsets.ours(ipsets.live_sets(self.runner), referenced, set(wanted))
        create = [s for s in wanted.values() if not s.matches(live.get(s.name))]
        stale = {name: s for name, s in live.items() if name not in wanted}
        before, after = ipsets.set_changes(create, stale, live)
        transactions = list(plan.transactions)
        if create:
            fresh = [s.name for s in create if s.name not in live]
            undo = ipsets.destroy_script(fresh) if fresh else None
            payload = ipsets.create_script(create, live)
            transactions.insert(0, Transaction(ipsets.CREATE_ARGV, payload, undo))
        if stale:
            transactions.append(Transaction(ipsets.DESTROY_ARGV, ipsets.destroy_script(stale)))
        changes = (*before, *plan.changes, *after)
        return Plan(plan.backend, changes, tuple(transactions))

    def transaction(
        self, family: Family, live: FilterTable, desired: dict[str, list[str]], names: Names
    ) -> Transaction:
        """The load, and its undo: our chains as they are now (or none at all)."""
        now = {chain: live.rules(chain) for chain in ours(live)}
        after = after_hooks(FilterTable({**live.chains, **desired_table(desired)}), names)
        undo = apply_script(after, now, live_names(live)) if now else reset_script(family, after)[0]
        return Transaction(
            tuple(self.variant.restore(family)),
            script(apply_script(live, desired, names)),
            script(undo),
        )

    def apply(self, plan: Plan) -> None:
        """New sets first; then the families side by side, and if one fails the others
        are put back as they were and the new sets go again; then the stale sets."""
        before, tables, after = phases(plan.transactions)
        for step in before:
            try:
                self.runner.run(list(step.argv), input=step.payload)
            except Exception:
                self.destroy_new_sets(before)
                raise
        if tables:
            self.prepare_base_chains(tables)
            self.load_tables(tables, before)
        for step in after:
            ipsets.destroy(self.runner, ipsets.names_in(step.payload))
        if tables and self.variant.kind == "nft":
            for family in FAMILIES:
                basechains.tidy(self.runner, family)

    def prepare_base_chains(self, tables: list[Transaction]) -> None:
        """iptables-nft would create the base chains our hooks go into and keep them."""
        if self.variant.kind != "nft":
            return
        for family in FAMILIES:
            if any(t.argv[:1] == tuple(self.variant.restore(family)[:1]) for t in tables):
                basechains.prepare(self.runner, family)

    def load_tables(self, tables: list[Transaction], before: list[Transaction]) -> None:
        with ThreadPoolExecutor(max_workers=len(tables)) as pool:
            loads = [pool.submit(self.runner.run, list(t.argv), input=t.payload) for t in tables]
        failed = [load.exception() for load in loads if load.exception() is not None]
        if not failed:
            return
        for transaction, load in zip(tables, loads, strict=True):
            if load.exception() is None and transaction.undo is not None:
                self.runner.run(list(transaction.argv), input=transaction.undo)
        self.destroy_new_sets(before)
        raise failed[0]  # type: ignore[misc]

    def destroy_new_sets(self, before: list[Transaction]) -> None:
        names = [n for step in before if step.undo for n in ipsets.names_in(step.undo)]
        if names:
            ipsets.destroy(self.runner, names)

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


def set_names(tables: list[FilterTable]) -> set[str]:
    """The ipset sets our own chains match against."""
    return {
        word
        for table in tables
        for chain in ours(table)
        for rule in table.rules(chain)
        if "--match-set " in rule
        for word in MATCH_SET.findall(rule)
    }


def phases(
    transactions: tuple[Transaction, ...],
) -> tuple[list[Transaction], list[Transaction], list[Transaction]]:
    """(ipset steps before the tables, iptables-restore steps, ipset steps after)."""
    is_set = [t.argv[:1] == ("ipset",) for t in transactions]
    first = next((i for i, flag in enumerate(is_set) if not flag), len(transactions))
    before = list(transactions[:first])
    tables = [t for t, flag in zip(transactions, is_set, strict=True) if not flag]
    after = [t for i, t in enumerate(transactions) if i >= first and is_set[i]]
    return before, tables, after


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
        matcher = difflib.SequenceMatcher(a=before or [], b=after or [], autojunk=False)
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            if tag == "equal":
                continue
            changes += [Change(family, "remove", chain, t) for t in (before or [])[a0:a1]]
            changes += [Change(family, "add", chain, t) for t in (after or [])[b0:b1]]
    return changes


def script(lines: list[str]) -> str:
    return "\n".join(["*filter", *lines, "COMMIT", ""])


def desired_table(desired: dict[str, list[str]]) -> dict[str, list[LiveRule]]:
    return {c: [LiveRule(c, r) for r in rules] for c, rules in desired.items()}


def live_names(live: FilterTable) -> Names:
    """The chains our live hooks jump to (the defaults when there are none)."""
    mine = ours(live)
    found = [
        next((t for r in live.rules(chain) if is_hook(live, r, mine) and (t := target(r))), None)
        for chain in (DOCKER_USER, "INPUT")
    ]
    return Names(found[0] or FORWARD, found[1] or INPUT)


def after_hooks(table: FilterTable, names: Names) -> FilterTable:
    """The table as it will be once our hooks are in, so an undo knows to remove them."""
    chains = {name: list(rules) for name, rules in table.chains.items()}
    for h in hooks(table, names):
        kept = [r for r in chains.get(h.chain, []) if r.text != h.jump]
        chains[h.chain] = ([LiveRule(h.chain, h.jump)] if h.wanted else []) + kept
    return FilterTable(chains)


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


def apply_script(live: FilterTable, desired: dict[str, list[str]], names: Names) -> list[str]:
    """Declaring a chain under --noflush empties it, so each changed chain is rebuilt whole;
    unchanged chains are left alone and keep their counters."""
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


def is_created_docker_user(live: FilterTable) -> bool:
    """Our hook FORWARD->DOCKER-USER is there and Docker itself jumps to it nowhere."""
    docker_jumps = any(
        rule.text == f"-j {DOCKER_USER}" for rules in live.chains.values() for rule in rules
    )
    return hook(DOCKER_USER) in live.rules("FORWARD") and not docker_jumps
