"""One packet's trip through the host: hooks, routing decision, NAT and its reversal.

The order is the kernel's: PREROUTING, routing (local or forward), INPUT or
FORWARD + POSTROUTING; locally generated packets take OUTPUT + POSTROUTING. Replies
skip nat chains; conntrack undoes SNAT at the dstnat priority of PREROUTING and DNAT
at the srcnat priority of POSTROUTING, so raw and mangle rules see the wire addresses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dockwall.explain.evaluate import Context
from dockwall.explain.host import LiveHost
from dockwall.explain.netfilter import Hook
from dockwall.explain.traverse import Walker

DSTNAT_PRIORITY = -100
SRCNAT_PRIORITY = 100
UNROUTABLE = ("unreachable", "prohibit", "blackhole", "throw")
Undo = Callable[[Walker, Context], None]


@dataclass(frozen=True)
class Arrival:
    """Where a packet that survived ended up: delivered locally, or sent out `oif`."""

    local: bool
    oif: str


def receive(w: Walker, ctx: Context, state: LiveHost) -> Arrival | None:
    """A packet arriving on `ctx.packet.iif`; None when netfilter or routing drops it."""
    if not split_hook(w, "prerouting", ctx, DSTNAT_PRIORITY, undo_snat):
        return None
    return route_and_deliver(w, ctx, state)


def route_and_deliver(w: Walker, ctx: Context, state: LiveHost) -> Arrival | None:
    p = ctx.packet
    if state.net.is_local(p.version, p.dst):
        w.note("routing", "route", None, "destination is local: INPUT")
        return Arrival(True, "") if w.run_hook("input", ctx) else None
    route = state.net.lookup(p.version, p.dst)
    if route is None or route.kind in UNROUTABLE:
        w.note("routing", "route", None, "no route to destination: dropped")
        return None
    p.oif = route.dev
    bridged = p.iif == p.oif
    if bridged and not state.bridge_nf.get(p.version, False):
        w.note("routing", "route", None, f"bridged on {p.oif} without br_netfilter: no filtering")
        return Arrival(False, p.oif)
    if not bridged and not state.forwarding.get(p.version, True):
        w.note("routing", "route", None, f"IPv{p.version} forwarding is off: dropped")
        return None
    w.note("routing", "route", None, f"forward out {p.oif}" + (" (bridged)" if bridged else ""))
    if not w.run_hook("forward", ctx):
        return None
    if not split_hook(w, "postrouting", ctx, SRCNAT_PRIORITY, undo_dnat):
        return None
    return Arrival(False, p.oif)


def send(w: Walker, ctx: Context, state: LiveHost) -> Arrival | None:
    """A packet the host itself sends (its own services and replies from them)."""
    p = ctx.packet
    if not route_out(w, ctx, state):
        return None
    original_dst = p.dst
    if not w.run_hook("output", ctx):
        return None
    if p.dst != original_dst and not route_out(w, ctx, state):
        return None
    if not split_hook(w, "postrouting", ctx, SRCNAT_PRIORITY, undo_dnat):
        return None
    if p.oif != "lo":
        return Arrival(False, p.oif)
    p.iif, p.oif = "lo", ""
    w.nat_done.add("prerouting")
    if not w.run_hook("prerouting", ctx):
        return None
    w.note("routing", "route", None, "loopback: INPUT")
    return Arrival(True, "") if w.run_hook("input", ctx) else None


def route_out(w: Walker, ctx: Context, state: LiveHost) -> bool:
    p = ctx.packet
    if state.net.is_local(p.version, p.dst):
        p.oif = "lo"
        return True
    route = state.net.lookup(p.version, p.dst)
    if route is None or route.kind in UNROUTABLE:
        w.note("routing", "route", None, "no route to destination: dropped")
        return False
    p.oif = route.dev
    return True


def split_hook(w: Walker, hook: Hook, ctx: Context, priority: int, undo: Undo) -> bool:
    """Runs a hook in two halves around conntrack's NAT reversal (replies only)."""
    if ctx.packet.direction != "REPLY":
        return w.run_hook(hook, ctx)
    if not w.run_hook(hook, ctx, before=priority):
        return False
    undo(w, ctx)
    return w.run_hook(hook, ctx, after=priority)


def undo_snat(w: Walker, ctx: Context) -> None:
    p, conn = ctx.packet, ctx.conn
    if conn.snat and (p.dst, p.dport) == (conn.reply.dst, conn.reply.dport):
        p.dst, p.dport = conn.orig.src, conn.orig.sport
        w.note("prerouting", "conntrack", None, f"reverse SNAT: reply now {p.describe()}")


def undo_dnat(w: Walker, ctx: Context) -> None:
    p, conn = ctx.packet, ctx.conn
    if conn.dnat and (p.src, p.sport) == (conn.reply.src, conn.reply.sport):
        p.src, p.sport = conn.orig.dst, conn.orig.dport
        w.note("postrouting", "conntrack", None, f"reverse DNAT: reply now {p.describe()}")
