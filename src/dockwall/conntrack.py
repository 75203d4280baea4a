"""`--cut-existing`: remove exactly the tracked flows that the new rules would refuse.

Rules only judge new connections; a flow already in conntrack keeps going (for days:
the established timeout is 5 days). When a user tightens a policy and wants that to
bite now, these flows are found by evaluating each one against the same IR that was
just applied, and deleted one by one, by their original tuple.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dockwall.compile.ir import Allow, Filter, Guard, Ruleset
from dockwall.model.state import Address
from dockwall.runner import Runner

FAMILIES = ("ipv4", "ipv6")


@dataclass(frozen=True)
class Flow:
    """A tracked connection: the original tuple, and where the reply comes from (after DNAT
    that is the container really serving it)."""

    family: str
    proto: str
    src: Address
    dst: Address
    sport: int | None
    dport: int | None
    reply_src: Address
    reply_sport: int | None

    def __str__(self) -> str:
        ports = f" {self.sport} -> {self.dport}" if self.sport is not None else ""
        return f"{self.proto} {self.src} -> {self.dst}{ports} (served by {self.reply_src})"


def parse_flows(text: str) -> list[Flow]:
    """`conntrack -L -o extended` lines; anything unexpected is skipped, never guessed."""
    flows = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or words[0] not in FAMILIES:
            continue
        pairs = [w.split("=", 1) for w in words if "=" in w]
        src = [v for k, v in pairs if k == "src"]
        dst = [v for k, v in pairs if k == "dst"]
        sport = [int(v) for k, v in pairs if k == "sport"]
        dport = [int(v) for k, v in pairs if k == "dport"]
        if len(src) < 2 or len(dst) < 2:
            continue
        flows.append(
            Flow(
                words[0],
                words[2],
                ipaddress.ip_address(src[0]),
                ipaddress.ip_address(dst[0]),
                sport[0] if sport else None,
                dport[0] if dport else None,
                ipaddress.ip_address(src[1]),
                sport[1] if len(sport) > 1 else None,
            )
        )
    return flows


def allows(allow: Allow, peer: Address, proto: str, port: int | None) -> bool:
    if allow.peers is not None and not any(peer in net for net in allow.peers):
        return False
    if not allow.ports:
        return True
    wanted = "icmp" if proto in ("icmp", "icmpv6") else proto
    return any(
        p.proto == wanted
        and (p.first is None or (port is not None and p.first <= port <= (p.last or p.first)))
        for p in allow.ports
    )


def passes(filter_: Filter | None, peer: Address, flow: Flow, *, ingress: bool) -> bool:
    if filter_ is None:
        return True
    for allow in filter_.allows:
        port = flow.dport if (allow.original or not ingress) else flow.reply_sport
        if allows(allow, peer, flow.proto, port):
            return True
    return False


def guard_of(ruleset: Ruleset, address: Address) -> Guard | None:
    return next((g for g in ruleset.guards if any(e.address == address for e in g.endpoints)), None)


def on_bridge(ruleset: Ruleset, address: Address) -> bool:
    """A container address: a guarded one, or any in a Docker network's subnets."""
    return guard_of(ruleset, address) is not None or any(
        address in net for bridge in ruleset.bridges for net in bridge.subnets
    )


def refused(flow: Flow, ruleset: Ruleset) -> bool:
    """Whether the rules would refuse this flow if it started now."""
    server, client = flow.reply_src, flow.src
    if on_bridge(ruleset, client) and on_bridge(ruleset, server):
        return ruleset.isolate_peers and not any(
            p.source == client and p.destination == server for p in ruleset.peers
        )
    if on_bridge(ruleset, server):
        guard = guard_of(ruleset, server)
        ingress = guard.ingress if guard else ruleset.default_ingress
        return not passes(ingress, client, flow, ingress=True)
    if on_bridge(ruleset, client):
        guard = guard_of(ruleset, client)
        egress = guard.egress if guard else ruleset.default_egress
        return not passes(egress, flow.dst, flow, ingress=False)
    return False


def cut_refused(runner: Runner, ruleset: Ruleset) -> list[Flow]:
    """Deletes the refused flows of both families; returns them for the report."""
    cut = []
    for family in FAMILIES:
        listing = runner.run(["conntrack", "-L", "-f", family, "-o", "extended"], check=False)
        for flow in parse_flows(listing.stdout):
            if refused(flow, ruleset):
                runner.run(delete_argv(flow), check=False)
                cut.append(flow)
    return cut


def delete_argv(flow: Flow) -> list[str]:
    argv = [
        "conntrack",
        "-D",
        "-f",
        flow.family,
        "-p",
        flow.proto,
        "-s",
        str(flow.src),
        "-d",
        str(flow.dst),
    ]
    if flow.sport is not None and flow.dport is not None:
        argv += ["--sport", str(flow.sport), "--dport", str(flow.dport)]
    return argv
