"""Walks one packet through the base chains of one netfilter hook.

Chains run by priority, lowest first, whatever table or tool they come from.
`accept` ends only the current base chain; `drop` is final. nat chains see only
the first packet of a connection, and the first NAT binding on a hook wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockwall.explain.evaluate import TESTS, Context, evaluate, unknown_text
from dockwall.explain.live_ruleset import LiveRuleset
from dockwall.explain.nat import apply_nat
from dockwall.explain.netfilter import (
    Accept,
    Action,
    Chain,
    Continue,
    Drop,
    Goto,
    Hook,
    Jump,
    Nat,
    Return,
    Rule,
    SetMark,
    Table,
    UnknownAction,
    Vmap,
)

MAX_STEPS = 1_000_000
CONNTRACK_PRIORITY = -200


@dataclass(frozen=True)
class Step:
    """One line of the explanation: a rule that matched, a policy, a routing decision."""

    direction: str
    hook: str
    where: str
    rule: str | None
    action: str


class NeedsAssumption(Exception):
    """A rule's outcome hinges on a match we cannot evaluate: try both answers."""

    def __init__(self, key: tuple[str, int], text: str) -> None:
        super().__init__(text)
        self.key = key
        self.text = text


class UnknownVerdict(Exception):
    """A matching rule's target cannot be modelled: the verdict is unknown."""


@dataclass
class Walker:
    ruleset: LiveRuleset
    direction: str
    assumptions: dict[tuple[str, int], bool]
    steps: list[Step] = field(default_factory=list)
    nat_done: set[str] = field(default_factory=set)
    reject: str | None = None
    """What the REJECT that ended this walk answers with; None after a silent drop."""

    def note(self, hook: str, where: str, rule: str | None, action: str) -> None:
        self.steps.append(Step(self.direction, hook, where, rule, action))

    def run_hook(
        self, hook: Hook, ctx: Context, *, before: int | None = None, after: int | None = None
    ) -> bool:
        """True when the packet survives every base chain on `hook` (in the priority window)."""
        for table, chain in self.ruleset.base_chains(hook, ctx.packet.version):
            assert chain.base is not None
            priority = chain.base.priority
            if (before is not None and priority >= before) or (
                after is not None and priority < after
            ):
                continue
            if chain.base.type == "nat" and (ctx.packet.state != "NEW" or hook in self.nat_done):
                continue
            ctx.tracked = not (hook in ("prerouting", "output") and priority < CONNTRACK_PRIORITY)
            if self.run_chain(hook, table, chain, ctx) == "drop":
                return False
        return True

    def run_chain(self, hook: Hook, table: Table, base: Chain, ctx: Context) -> str:
        stack: list[tuple[Chain, int]] = []
        chain, index = base, 0
        for _ in range(MAX_STEPS):
            if index >= len(chain.rules):
                if not stack:
                    return self.policy(hook, table, base)
                self.note(hook, f"{table.label} {chain.name}", None, "end of chain: return")
                chain, index = stack.pop()
                continue
            rule = chain.rules[index]
            index += 1
            action = self.matched_action(rule, ctx, hook)
            if action is None:
                continue
            where = f"{table.label} {chain.name}"
            action = self.resolve_vmap(action, rule, ctx)
            if action is None:
                continue
            self.note(hook, where, rule.text, describe(action))
            for effect in rule.effects:
                ctx.packet.mark = apply_mark(ctx.packet.mark, effect)
            outcome = self.perform(action, hook, table, ctx)
            if outcome in ("accept", "drop"):
                return outcome
            if outcome == "return":
                if not stack:
                    return self.policy(hook, table, base)
                chain, index = stack.pop()
            elif isinstance(action, Jump | Goto):
                target = table.chains.get(action.chain)
                if target is None:
                    raise UnknownVerdict(f"{where}: jump to missing chain {action.chain}")
                if isinstance(action, Jump):
                    stack.append((chain, index))
                chain, index = target, 0
        raise UnknownVerdict(f"{table.label}: more than {MAX_STEPS} steps (a loop?)")

    def matched_action(self, rule: Rule, ctx: Context, hook: str) -> Action | None:
        """The rule's action if it matches; asks for an assumption if that is unknowable."""
        unknown: str | None = None
        for condition in rule.conditions:
            test = condition.test
            result = TESTS[type(test)](test, ctx)  # evaluate(), inlined: it runs per rule
            if result is None:
                unknown = unknown_text(test, ctx)
            elif (result is False) if not condition.negate else result:
                return None
        if unknown is None:
            return rule.action
        if isinstance(rule.action, Continue) and not rule.effects:
            return None
        key = (f"{self.direction}/{hook}", id(rule))
        if key not in self.assumptions:
            raise NeedsAssumption(key, f"{rule.text}: {unknown}")
        return rule.action if self.assumptions[key] else None

    def resolve_vmap(self, action: Action, rule: Rule, ctx: Context) -> Action | None:
        if not isinstance(action, Vmap):
            return action
        for condition, verdict in action.entries:
            result = evaluate(condition, ctx)
            if result is None:
                raise UnknownVerdict(f"{rule.text}: cannot evaluate map key")
            if result:
                return verdict
        return None

    def perform(self, action: Action, hook: Hook, table: Table, ctx: Context) -> str:
        if isinstance(action, Accept):
            return "accept"
        if isinstance(action, Drop):
            self.reject = action.reject
            return "drop"
        if isinstance(action, Return):
            return "return"
        if isinstance(action, SetMark):
            ctx.packet.mark = apply_mark(ctx.packet.mark, action)
            return "continue"
        if isinstance(action, Nat):
            apply_nat(action, hook, ctx)
            self.nat_done.add(hook)
            return "accept"
        if isinstance(action, UnknownAction):
            raise UnknownVerdict(f"{table.label}: cannot simulate target {action.text}")
        return "continue"

    def policy(self, hook: str, table: Table, base: Chain) -> str:
        assert base.base is not None
        verdict = base.base.policy
        self.note(hook, f"{table.label} {base.name}", None, f"policy {verdict.upper()}")
        return verdict


def apply_mark(current: int, effect: SetMark) -> int:
    return (current & ~effect.mask) ^ effect.value


def describe(action: Action) -> str:
    if isinstance(action, Jump):
        return f"jump {action.chain}"
    if isinstance(action, Goto):
        return f"goto {action.chain}"
    if isinstance(action, Drop):
        return f"REJECT with {action.reject}" if action.reject else "DROP"
    if isinstance(action, Nat):
        return action.kind.upper()
    if isinstance(action, Continue):
        return f"{action.name} (continue)"
    return type(action).__name__.upper()
