"""IR -> the chains dockwall wants, as rule texts in iptables-save's own spelling.

Rules are written exactly as iptables-save prints them back (option order, `-m tcp`,
/32 suffixes, no `/0`), so in the usual case the live ruleset equals the desired one as
plain text; where it does not, plans compare both through canonical.py, so `plan`
shows nothing when nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockwall.backends.iptables import fqdn
from dockwall.backends.iptables.detect import Family
from dockwall.backends.iptables.droplog import log_rules
from dockwall.backends.iptables.ipsets import IpSet, set_for, wants_set
from dockwall.backends.iptables.lists import except_match, list_ipsets, list_match, refusal
from dockwall.backends.iptables.ownership import OWNED, PREFIX
from dockwall.compile.ir import (
    Allow,
    DropLog,
    Endpoint,
    Filter,
    Guard,
    LogDirection,
    PortMatch,
    Ruleset,
    plain_interface,
)
from dockwall.compile.normalize import is_any_of_family
from dockwall.model.state import Address, Bridge, Network

FORWARD = "DOCKWALL-FORWARD"
INPUT = "DOCKWALL-INPUT"
DEFAULT_IN = "DOCKWALL-DEFAULT-I"
DEFAULT_OUT = "DOCKWALL-DEFAULT-E"
PEERS = "DOCKWALL-PEERS"
UNSEEN_IN = "DOCKWALL-UNSEEN-I"
UNSEEN_OUT = "DOCKWALL-UNSEEN-E"
DOCKER_BRIDGES = "br-+"
CHAIN_PREFIX = PREFIX
ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
NEIGHBOUR_DISCOVERY = (133, 134, 135, 136)


@dataclass(frozen=True)
class Desired:
    """Our chains in order, each with its rules, and the ipset sets they match against,
    for one address family."""

    chains: dict[str, list[str]]
    sets: dict[str, IpSet] = field(default_factory=dict)


@dataclass(frozen=True)
class Direction:
    """What differs between ingress and egress: the chain name's letter, and which side
    of the packet the peers are on."""

    letter: str
    peer_flag: str
    set_side: str
    name: LogDirection


INGRESS = Direction("I", "-s", "src", "ingress")
EGRESS = Direction("E", "-d", "dst", "egress")


@dataclass
class Chains:
    """What rendering one family collects: the chains, the ipset sets their rules match
    against, and the chain made for each filter object (by its id)."""

    family: Family
    chains: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, IpSet] = field(default_factory=dict)
    filters: dict[int, str] = field(default_factory=dict)
    log: DropLog | None = None

    @property
    def version(self) -> int:
        return version(self.family)


def version(family: Family) -> int:
    return 4 if family == "ipv4" else 6


def cidr(network: Network) -> str:
    return f"{network.network_address}/{network.prefixlen}"


def address_match(flag: str, network: Network) -> str:
    """iptables-save prints a /0 as no address match: every address of the family (the
    rule is in that family's table only)."""
    return "" if is_any_of_family(network) else f"{flag} {cidr(network)}"


def single(address: Address) -> str:
    return f"{address}/{address.max_prefixlen}"


def host(endpoint: Endpoint) -> str:
    return single(endpoint.address)


def port_range(port: PortMatch) -> str:
    if port.first is None or port.last is None or port.first == port.last:
        return str(port.first)
    return f"{port.first}:{port.last}"


def proto_match(port: PortMatch, family: Family, original: bool) -> str:
    if port.proto == "icmp":
        return "-p icmp" if family == "ipv4" else "-p ipv6-icmp"
    if port.first is None:
        return f"-p {port.proto}"
    if original:
        return f"-p {port.proto} -m conntrack --ctorigdstport {port_range(port)} --ctdir ORIGINAL"
    return f"-p {port.proto} -m {port.proto} --dport {port_range(port)}"


def allow_rules(out: Chains, allow: Allow, direction: Direction) -> list[str]:
    """Every (peer, port) combination of one Allow that exists in this family; a long
    peer list is one ipset match instead (added to `out.sets`), so it costs one lookup,
    and so is each named list; domain names are their learned-address ipsets (fqdn.py).
    `except` entries are `! --match-set` matches (see lists.py). Parts go in
    iptables-save's order: addresses and `-p` first, then the matches."""
    side = direction.set_side
    carve = except_match(allow, out.family, side, out.sets)
    ports = [split_proto(proto_match(p, out.family, allow.original)) for p in allow.ports]
    ports = ports or [("", "")]
    if allow.fqdns:
        learned = [fqdn.set_name(pattern, out.family) for pattern in allow.fqdns]
        return [
            words(proto, f"-m set --match-set {name} {side}", rest, "-j RETURN")
            for name in learned
            for proto, rest in ports
        ]
    if allow.peers is None:
        return [words(proto, carve, rest, "-j RETURN") for proto, rest in ports]
    mine = [p for p in allow.peers if p.version == out.version]
    named = [list_match(name, out.family, side) for name in allow.lists]
    if wants_set(mine):
        found = set_for(out.family, mine)
        out.sets[found.name] = found
        named.insert(0, f"-m set --match-set {found.name} {side}")
        mine = []
    flag = direction.peer_flag
    return [
        *(
            words(address_match(flag, p), proto, carve, rest, "-j RETURN")
            for p in mine
            for proto, rest in ports
        ),
        *(
            words(proto, match, carve, rest, "-j RETURN")
            for match in named
            for proto, rest in ports
        ),
    ]


def split_proto(match: str) -> tuple[str, str]:
    """`-p tcp -m tcp --dport 80` as (`-p tcp`, `-m tcp --dport 80`)."""
    parts = match.split(" ", 2)
    return " ".join(parts[:2]), parts[2] if len(parts) > 2 else ""


def words(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def filter_rules(out: Chains, filter_: Filter, direction: Direction) -> list[str]:
    """What the filter allows returns; the rest is logged (rate-limited) and dropped."""
    rules = [r for allow in filter_.allows for r in allow_rules(out, allow, direction)]
    dropped = log_rules(out.log, direction.name, filter_.tag)
    return [*dict.fromkeys(rules), *dropped, *refusal(filter_.reject, out.family)]


def filter_target(
    out: Chains, filter_: Filter | None, direction: Direction, owner: Guard
) -> str | None:
    """goto the filter's chain, so its RETURN ends our part of FORWARD for this packet;
    None when the direction is not restricted. The chain is made once per filter object
    and named after the first container using it: replicas of one service share their
    entry's filter, so 10,000 of them cost one chain."""
    if filter_ is None:
        return None
    if id(filter_) not in out.filters:
        chain = f"{CHAIN_PREFIX}{direction.letter}-{owner.key}"
        out.filters[id(filter_)] = chain
        out.chains[chain] = filter_rules(out, filter_, direction)
    return f"-g {out.filters[id(filter_)]}"


def ingress_dispatch(endpoint: Endpoint, target: str) -> str:
    """By address and bridge; by address alone behind a bridge whose name cannot be
    written (then traffic within that bridge is judged as ingress too: stricter)."""
    iface = endpoint.interface
    if not plain_interface(iface):
        return f"-d {host(endpoint)} {target}"
    return f"-d {host(endpoint)} ! -i {iface} -o {iface} {target}"


def egress_dispatch(endpoint: Endpoint, target: str, forwarded: bool) -> str:
    iface = endpoint.interface
    if not plain_interface(iface):
        return f"-s {host(endpoint)} {target}"
    out = f"! -o {iface} " if forwarded else ""
    return f"-s {host(endpoint)} -i {iface} {out}{target}"


def render(ruleset: Ruleset, family: Family) -> Desired:
    """FORWARD dispatch by container address first, then the bridge-wide defaults."""
    out = Chains(
        family,
        {
            FORWARD: [ESTABLISHED, *fqdn.forward_rules(ruleset, family)],
            INPUT: [ESTABLISHED, *fqdn.input_rules(ruleset)],
        },
        log=ruleset.log,
    )
    if family == "ipv6":
        out.chains[INPUT] += neighbour_discovery()
    for guard in ruleset.guards:
        add_guard(out, ruleset, guard)
    add_peers(out, ruleset)
    add_defaults(out, ruleset)
    out.sets.update(list_ipsets(ruleset.lists, family, out.chains))
    return Desired({name: [OWNED, *rules] for name, rules in out.chains.items()}, out.sets)


def add_guard(out: Chains, ruleset: Ruleset, guard: Guard) -> None:
    """One container's (or one service's replicas') dispatch, by address, both ways."""
    mine = [e for e in guard.endpoints if e.address.version == out.version]
    if not mine:
        return
    ingress = filter_target(out, guard.ingress, INGRESS, guard)
    egress = filter_target(out, guard.egress, EGRESS, guard)
    for endpoint in mine:
        if ingress or ruleset.default_ingress is not None:
            out.chains[FORWARD].append(ingress_dispatch(endpoint, ingress or "-j RETURN"))
        if egress or ruleset.default_egress is not None:
            out.chains[FORWARD].append(egress_dispatch(endpoint, egress or "-j RETURN", True))
            out.chains[INPUT].append(egress_dispatch(endpoint, egress or "-j RETURN", False))


def neighbour_discovery() -> list[str]:
    return [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in NEIGHBOUR_DISCOVERY]


def add_peers(out: Chains, ruleset: Ruleset) -> None:
    """Container to container on one bridge; the kernel shows it to FORWARD only with
    br_netfilter, which the engine checks before relying on this. IPv6 neighbour
    discovery between containers passes, or no IPv6 peer could ever find another."""
    if not ruleset.isolate_peers:
        return
    rules: list[str] = neighbour_discovery() if out.family == "ipv6" else []
    for allow in ruleset.peers:
        if allow.source.version != out.version:
            continue
        pair = f"-s {single(allow.source)} -d {single(allow.destination)} "
        ports = [proto_match(p, out.family, original=False) + " " for p in allow.ports] or [""]
        rules += [f"{pair}{port}-j RETURN" for port in ports]
    out.chains[PEERS] = [*dict.fromkeys(rules), *log_rules(out.log, "peers", "d"), "-j DROP"]
    for bridge in ruleset.known_bridges:
        out.chains[FORWARD].append(f"-i {bridge.interface} -o {bridge.interface} -g {PEERS}")


def add_defaults(out: Chains, ruleset: Ruleset) -> None:
    """Whole-bridge rules: they hold containers dockwall has not seen yet (fail-closed).

    Known bridges are named; then every interface that is not the host's own is held
    too (`add_unseen`), so a Docker network created while no agent was running is never
    open, whatever its bridge is called, not even for a moment."""
    if ruleset.default_ingress is not None:
        out.chains[DEFAULT_IN] = filter_rules(out, ruleset.default_ingress, INGRESS)
    if ruleset.default_egress is not None:
        out.chains[DEFAULT_OUT] = filter_rules(out, ruleset.default_egress, EGRESS)
    hosts = ruleset.plain_host_interfaces
    fallback = (Bridge("", DOCKER_BRIDGES),) if hosts is None else ()
    for bridge in (*ruleset.known_bridges, *fallback):
        iface = bridge.interface
        if ruleset.default_ingress is not None:
            out.chains[FORWARD].append(f"! -i {iface} -o {iface} -g {DEFAULT_IN}")
        if ruleset.default_egress is not None:
            out.chains[FORWARD].append(f"-i {iface} ! -o {iface} -g {DEFAULT_OUT}")
            out.chains[INPUT].append(f"-i {iface} -g {DEFAULT_OUT}")
    if hosts is not None:
        add_unseen(out, ruleset, hosts)


def add_unseen(out: Chains, ruleset: Ruleset, hosts: tuple[str, ...]) -> None:
    """Forwarded traffic from one of the host's own interfaces to one that is neither
    the host's nor a known bridge (those were dealt with above) is ingress to something
    unseen; the other way round, egress, as is traffic from such an interface to the
    host itself. Each is held by the defaults, and each is checked (a jump, not a goto),
    as for a known bridge. Traffic within one unseen bridge is neither."""
    if ruleset.default_ingress is not None:
        out.chains[UNSEEN_IN] = [
            *(f"-o {i} -j RETURN" for i in hosts),
            *(f"-i {i} -g {DEFAULT_IN}" for i in hosts),
        ]
        out.chains[FORWARD].append(f"-j {UNSEEN_IN}")
    if ruleset.default_egress is not None:
        out.chains[UNSEEN_OUT] = [
            *(f"-i {i} -j RETURN" for i in hosts),
            *(f"-o {i} -g {DEFAULT_OUT}" for i in hosts),
        ]
        out.chains[FORWARD].append(f"-j {UNSEEN_OUT}")
        out.chains[INPUT] += [*(f"-i {i} -j RETURN" for i in hosts), f"-g {DEFAULT_OUT}"]
