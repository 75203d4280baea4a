"""A connection's verdict: the first packet must pass, and so must the reply.

When a rule hinges on a match the simulator cannot evaluate, both answers are tried;
if they agree the verdict stands (the match did not matter), otherwise it is
`unknown` and names the match. It never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from dockwall.explain.evaluate import Context
from dockwall.explain.flow import Arrival, receive, send
from dockwall.explain.host import LiveHost
from dockwall.explain.packet import Conn, Packet, Tuple, reply_packet
from dockwall.explain.traverse import NeedsAssumption, Step, UnknownVerdict, Walker

MAX_RUNS = 32
Verdict = Literal["accept", "drop", "unknown"]


@dataclass(frozen=True)
class Delivery:
    """Where the first packet ended up, NAT applied: this host's own sockets (`local`),
    or out of `oif` towards `dst`. What listens there decides whether it opens."""

    local: bool
    version: int
    proto: int
    dst: int
    dport: int | None
    iif: str


@dataclass
class Explanation:
    verdict: Verdict
    packet: str
    failed: Literal["original", "reply"] | None = None
    reply: str | None = None
    path: list[Step] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    delivered: Delivery | None = None
    reject: str | None = None
    """Set when a REJECT ended the walk: what it answers with."""
    undecided: list[str] = field(default_factory=list)
    """Unevaluated matches that leave the verdict alone but change where the packet goes
    or how it is refused: the connection's answer then depends on them."""


def explain_connection(state: LiveHost, first: Packet, local_origin: bool) -> Explanation:
    pending: list[dict[tuple[str, int], bool]] = [{}]
    outcomes: list[Explanation] = []
    unknown: list[str] = []
    while pending and len(outcomes) + len(unknown) < MAX_RUNS:
        assumptions = pending.pop(0)
        try:
            outcomes.append(run_once(state, first, local_origin, assumptions))
        except NeedsAssumption as need:
            unknown.append(need.text)
            pending += [{**assumptions, need.key: True}, {**assumptions, need.key: False}]
        except UnknownVerdict as exc:
            return Explanation("unknown", first.describe(), unknown=[str(exc)])
    return combine(first, outcomes, unknown, complete=not pending)


def combine(
    first: Packet, outcomes: list[Explanation], unknown: list[str], *, complete: bool
) -> Explanation:
    verdicts = {(o.verdict, o.failed) for o in outcomes}
    if complete and len(verdicts) == 1:
        result = outcomes[0]
        if unknown:
            result.notes.append(
                "these matches could not be evaluated but do not change the verdict: "
                + "; ".join(dict.fromkeys(unknown))
            )
        if len({(o.delivered, o.reject) for o in outcomes}) > 1:
            result.undecided = list(dict.fromkeys(unknown))
        return result
    path = outcomes[0].path if outcomes else []
    return Explanation("unknown", first.describe(), path=path, unknown=list(dict.fromkeys(unknown)))


def run_once(
    state: LiveHost, first: Packet, local_origin: bool, assumptions: dict[tuple[str, int], bool]
) -> Explanation:
    packet = replace(first)
    conn = Conn(packet.tuple(), Tuple(packet.dst, packet.src, packet.dport, packet.sport))
    forward = Walker(state.ruleset, "original", assumptions)
    arrival = travel(
        forward, Context(packet, conn, state.net, sets=state.ipsets), state, local_origin
    )
    description = first.describe()
    if arrival is None:
        return Explanation(
            "drop", description, "original", path=forward.steps, reject=forward.reject
        )
    delivered = Delivery(
        arrival.local, packet.version, packet.proto, packet.dst, packet.dport, packet.iif
    )
    reply = reply_packet(packet, conn)
    reply_text = reply.describe()
    back = Walker(state.ruleset, "reply", assumptions)
    reply.iif = arrival.oif
    returned = travel(
        back, Context(reply, conn, state.net, sets=state.ipsets), state, arrival.local
    )
    path = forward.steps + back.steps
    if returned is None:
        return Explanation("drop", description, "reply", reply_text, path, reject=back.reject)
    return Explanation("accept", description, None, reply_text, path, delivered=delivered)


def travel(w: Walker, ctx: Context, state: LiveHost, local_origin: bool) -> Arrival | None:
    if local_origin:
        ctx.packet.iif = ""
        return send(w, ctx, state)
    return receive(w, ctx, state)
