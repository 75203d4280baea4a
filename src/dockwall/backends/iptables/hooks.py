"""Our jumps in chains that are not ours: DOCKER-USER -> ours, INPUT -> ours, and
FORWARD -> DOCKER-USER where Docker made none (ip6tables under Docker 20.10).

Only exact, marked jumps to our own chains count as ours; any other rule in those
chains, whatever its comment, is someone else's and is never moved or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockwall.backends.iptables.live import FilterTable, LiveRule
from dockwall.backends.iptables.ownership import hook, is_hook, ours, target
from dockwall.backends.iptables.render import FORWARD, INPUT

DOCKER_USER = "DOCKER-USER"


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


def is_created_docker_user(live: FilterTable) -> bool:
    """Our hook FORWARD->DOCKER-USER is there and Docker itself jumps to it nowhere."""
    docker_jumps = any(
        rule.text == f"-j {DOCKER_USER}" for rules in live.chains.values() for rule in rules
    )
    return hook(DOCKER_USER) in live.rules("FORWARD") and not docker_jumps
