"""Drop totals read from the kernel's rule counters, by chain: exact, unlike the log.

Both backends count every rule of ours; a filter chain ends in a counted drop, and its
log rule (if any) carries the NFLOG prefix naming the policy entry. So one pass over
the counters gives, per chain: direction, the entry's tag, dropped packets and bytes,
and the allowed new connections its other rules returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockwall.backends.base import RuleCounter
from dockwall.compile.ir import LogDirection
from dockwall.compile.origin import DEFAULTS, parse_prefix

PREFIX_WORD = re.compile(r'(?:--nflog-prefix|log prefix) "([^"]*)"')
IPTABLES_CHAIN = re.compile(r"DOCKWALL[1-9]?-(I|E|DEFAULT-I|DEFAULT-E|PEERS)(?:-(\S+))?$")
NFT_CHAIN = re.compile(r"(?:chain )?(in|out|default-in|default-out|peers)(?:-(\S+))?$")
DIRECTIONS: dict[str, LogDirection] = {
    "I": "ingress", "DEFAULT-I": "ingress", "in": "ingress", "default-in": "ingress",
    "E": "egress", "DEFAULT-E": "egress", "out": "egress", "default-out": "egress",
    "PEERS": "peers", "peers": "peers",
}  # fmt: skip
DROPS = frozenset({"-j DROP", "counter drop"})


@dataclass
class ChainTotals:
    """One filter chain: `owner` is the container key (iptables) or name (nft) in its
    name, None for the defaults and peers."""

    chain: str
    direction: LogDirection
    owner: str | None
    tag: str = DEFAULTS
    dropped_packets: int = 0
    dropped_bytes: int = 0
    logged: int = 0
    allowed: int = 0


def chain_direction(where: str) -> tuple[LogDirection, str | None] | None:
    for pattern in (IPTABLES_CHAIN, NFT_CHAIN):
        found = pattern.fullmatch(where)
        if found:
            return DIRECTIONS[found[1]], found[2]
    return None


def chain_totals(counters: list[RuleCounter]) -> list[ChainTotals]:
    """Both families of a chain are summed (iptables has one table per family)."""
    found: dict[str, ChainTotals] = {}
    for counter in counters:
        kind = chain_direction(counter.where)
        if kind is None:
            continue
        totals = found.setdefault(counter.where, ChainTotals(counter.where, *kind))
        prefix = PREFIX_WORD.search(counter.text)
        if counter.text in DROPS:
            totals.dropped_packets += counter.packets
            totals.dropped_bytes += counter.bytes
        elif prefix is not None:
            decoded = parse_prefix(prefix[1])
            if decoded is not None:
                totals.tag = decoded.tag
            totals.logged += counter.packets
        elif counter.text.endswith(("-j RETURN", "counter return", "counter accept")):
            totals.allowed += counter.packets
    return list(found.values())


def suppressed_by_direction(counters: list[RuleCounter]) -> dict[LogDirection, int]:
    """Drops the kernel counted but did not log (rate limit), since the rules loaded."""
    totals: dict[LogDirection, int] = {"ingress": 0, "egress": 0, "peers": 0}
    for chain in chain_totals(counters):
        totals[chain.direction] += max(chain.dropped_packets - chain.logged, 0)
    return totals
