"""What a NAT rule does to the packet and to the conntrack entry's reply tuple.

Rewriting the reply tuple is what lets the simulator build the reply packet exactly
as the far end sends it, and reverse the NAT on the way back as conntrack does.
"""

from __future__ import annotations

from dataclasses import replace

from dockwall.explain.evaluate import Context
from dockwall.explain.netfilter import Hook, Nat


def apply_nat(action: Nat, hook: Hook, ctx: Context) -> None:
    if hook in ("prerouting", "output"):
        destination_nat(action, hook, ctx)
    else:
        source_nat(action, ctx)


def destination_nat(action: Nat, hook: Hook, ctx: Context) -> None:
    packet = ctx.packet
    if action.kind == "redirect":
        address = loopback(packet.version) if hook == "output" else inbound_address(ctx)
    else:
        address = action.address if action.address is not None else packet.dst
    packet.dst = address
    if action.port is not None:
        packet.dport = action.port
    ctx.conn.reply = replace(ctx.conn.reply, src=packet.dst, sport=packet.dport)


def source_nat(action: Nat, ctx: Context) -> None:
    packet = ctx.packet
    if action.kind == "masquerade":
        route = ctx.host.lookup(packet.version, packet.dst)
        address = ctx.host.source_address(packet.version, packet.oif, route)
        if address is None:
            return
    else:
        address = action.address if action.address is not None else packet.src
    packet.src = address
    if action.port is not None:
        packet.sport = action.port
    ctx.conn.reply = replace(ctx.conn.reply, dst=packet.src, dport=packet.sport)


def loopback(version: int) -> int:
    return 0x7F000001 if version == 4 else 1


def inbound_address(ctx: Context) -> int:
    """REDIRECT sends to the primary address of the interface the packet came in on."""
    address = ctx.host.source_address(ctx.packet.version, ctx.packet.iif)
    return address if address is not None else ctx.packet.dst
