"""Turns the IR into the nftables objects of table `inet dockwall`.

Layout, and why:

- Base chains `forward` and `input` hook at priority filter - 1, before Docker's, with
  policy accept: our table can only drop. Anything it lets through still meets Docker.
- Established and related packets leave at once, so filters only ever see new
  connections and replies can never be cut.
- Dispatch is one verdict-map lookup per direction and family, keyed by (container
  address, bridge interface), so a packet's cost does not grow with the container count.
  Peers are a plain match when one prefix covers them, an anonymous set when a few do
  and a named interval set above SET_THRESHOLD, so a long allowlist is one lookup too,
  while a host with thousands of short allowlists does not cost nft thousands of named
  sets (which is what makes loading a table slow).
- A filter chain `return`s what it allows and drops the rest. Returning (not accepting)
  lets one forwarded packet be checked as the destination's ingress and then as the
  source's egress; the base chain's policy accept then hands it to Docker.
- Guards without a filter for a direction map to `return`, so the defaults (which catch
  every other address on a known bridge, fail-closed) never see their traffic.
- Traffic between containers on one bridge (`@intra`) is not ingress or egress: it is
  accepted as before, or, when peers are isolated, sent to chain `peers`, which accepts
  the allowed (source . destination [. protocol . port]) pairs by set lookup and drops
  the rest. The kernel shows that traffic to the forward hook only with br_netfilter.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from dockwall.backends.nftables import expr as e
from dockwall.backends.nftables import fqdn, unseen
from dockwall.backends.nftables.describe import without_implied_family
from dockwall.backends.nftables.droplog import limit_objects, log_rules
from dockwall.backends.nftables.expr import Json
from dockwall.backends.nftables.intervals import collapsed
from dockwall.backends.nftables.lists import (
    except_matches,
    list_peer_matches,
    list_sets,
    refusal,
)
from dockwall.compile.ir import (
    Allow,
    Dns,
    DropLog,
    Filter,
    Guard,
    LogDirection,
    PeerAllow,
    PortMatch,
    Ruleset,
    plain_interface,
)
from dockwall.compile.normalize import is_any_of_family
from dockwall.model.state import Address, Network

PRIORITY = -1
ND_TYPES = ("nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert")
ICMP = {4: "icmp", 6: "ipv6-icmp"}
IP = {4: "ip", 6: "ip6"}
NFPROTO = {4: "ipv4", 6: "ipv6"}
ADDR_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
NAME_LIMIT = 48
SET_THRESHOLD = 8
PEERS = "peers"
OWNED = "owned-by-dockwall"
DOCKER_BRIDGES = "br-*"
L4_PORTS = ("tcp", "udp")


@dataclass(frozen=True)
class Direction:
    """What differs between ingress and egress: which side of the packet is whose."""

    chain: LogDirection
    default_chain: str
    prefix: str
    container_field: str
    peer_field: str
    interface_key: str


INGRESS = Direction("ingress", "default-in", "in", "daddr", "saddr", "oifname")
EGRESS = Direction("egress", "default-out", "out", "saddr", "daddr", "iifname")


@dataclass
class Objects:
    """Chains first (map elements jump to them), then sets and maps, then the rules."""

    sets: list[Json] = field(default_factory=list)
    chains: list[Json] = field(default_factory=list)
    rules: list[Json] = field(default_factory=list)
    texts: dict[Address, str] = field(default_factory=dict)
    log: DropLog | None = None

    def address(self, address: Address) -> str:
        """str() of an IPv6 address is slow; each container's is needed in both directions."""
        text = self.texts.get(address)
        if text is None:
            text = self.texts[address] = str(address)
        return text

    def ordered(self) -> list[Json]:
        return [*self.chains, *self.sets, *self.rules]

    def chain(self, name: str, exprs_per_rule: Iterable[list[Json]]) -> None:
        self.chains.append({"chain": {**chain_ref(name)}})
        self.rules.extend(rule(name, exprs) for exprs in exprs_per_rule)


def render(ruleset: Ruleset, carried: dict[str, list[Json]] | None = None) -> list[Json]:
    """The one transaction that replaces the table, whether or not it exists yet.

    `add` makes the `delete` safe on a host without the table; the delete then drops
    everything old, so the kernel swaps old for new in a single commit. `carried` are
    the live elements of the learned-address sets (fqdn.carried_elements), put back in
    the same commit.
    """
    table = {"table": e.table_ref()}
    return [
        {"add": table},
        {"delete": table},
        {"add": table},
        *({"add": obj} for obj in table_objects(ruleset, carried or {})),
    ]


def table_objects(ruleset: Ruleset, carried: dict[str, list[Json]] | None = None) -> list[Json]:
    """Chain OWNED marks the table as dockwall's: nft 1.0's JSON keeps no table comment,
    and a table someone else named `inet dockwall` must never be replaced."""
    objects = Objects(log=ruleset.log)
    objects.chains.append({"chain": chain_ref(OWNED)})
    objects.sets += limit_objects(ruleset.log)
    interfaces = bridge_interfaces(ruleset)
    objects.sets.append(named_set("bridges", "ifname", [], interfaces))
    objects.sets.append(
        named_set("intra", ["ifname", "ifname"], [], [e.concat(i, i) for i in interfaces])
    )
    hosts = ruleset.plain_host_interfaces
    if hosts is not None:
        objects.sets.append(named_set(unseen.HOSTS, "ifname", [], sorted(set(hosts))))
    labels = guard_labels(ruleset.guards)
    for direction, default in (
        (INGRESS, ruleset.default_ingress),
        (EGRESS, ruleset.default_egress),
    ):
        add_direction(objects, direction, ruleset, labels, default)
    if ruleset.isolate_peers:
        add_peers(objects, ruleset.peers)
    objects.sets += list_sets(ruleset.lists)
    if ruleset.dns is not None:
        objects.sets += fqdn.dns_sets(ruleset.dns, carried or {})
        objects.chains.append(fqdn.nat_chain())
        objects.rules += [rule(fqdn.NAT_CHAIN, exprs) for exprs in fqdn.nat_rules(ruleset.dns)]
    add_base_chains(objects, ruleset.isolate_peers, ruleset.dns)
    objects.rules += [
        rule("forward", exprs)
        for exprs in unseen.forward_rules(ruleset, INGRESS.default_chain, EGRESS.default_chain)
    ]
    objects.rules += [
        rule("input", exprs) for exprs in unseen.input_rules(ruleset, EGRESS.default_chain)
    ]
    return objects.ordered()


def add_base_chains(objects: Objects, isolate_peers: bool = False, dns: Dns | None = None) -> None:
    """Same-bridge traffic skips the guards: accepted, or judged by `peers` when isolated.
    The rules for interfaces not seen yet (`unseen`) follow the jumps. DNS clients'
    DNS over TLS is dropped and their redirected DNS accepted before any of that."""
    established = e.match(e.ct("state"), ["established", "related"], op="in")
    intra = e.goto(PEERS) if isolate_peers else e.verdict("accept")
    objects.chains.append(base_chain("forward"))
    objects.chains.append(base_chain("input"))
    objects.rules.append(rule("forward", [established, e.verdict("accept")]))
    if dns is not None:
        objects.rules += [rule("forward", exprs) for exprs in fqdn.forward_rules()]
        objects.rules += [rule("input", exprs) for exprs in fqdn.input_rules(dns)]
    objects.rules += [
        rule(
            "forward",
            [
                e.match(e.concat(e.meta("iifname"), e.meta("oifname")), e.set_ref("intra")),
                intra,
            ],
        ),
        rule("forward", [e.jump(INGRESS.chain)]),
        rule("forward", [e.jump(EGRESS.chain)]),
        rule("input", [established, e.verdict("accept")]),
        rule("input", [neighbour_discovery(), e.verdict("accept")]),
        rule("input", [e.jump(EGRESS.chain)]),
    ]


def neighbour_discovery() -> Json:
    return e.match(e.payload("icmpv6", "type"), {"set": list(ND_TYPES)})


def add_peers(objects: Objects, peers: Sequence[PeerAllow]) -> None:
    """Chain `peers`: container to container on one bridge, reached only when isolated.

    Each family has at most one set of (source . destination) pairs allowed any protocol
    and one of (source . destination . protocol . port) for single TCP/UDP ports, so a
    packet costs a couple of hash lookups however many pairs there are. Rarer port specs
    (ranges, a whole protocol, ICMP) get one rule and pair set per distinct spec. IPv6
    neighbour discovery between containers passes, or no IPv6 peer could find another.
    """
    rules: list[list[Json]] = [[neighbour_discovery(), e.verdict("accept")]]
    for family in (4, 6):
        ip = IP[family]
        addr = ADDR_TYPE[family]
        pair_key = e.concat(e.payload(ip, "saddr"), e.payload(ip, "daddr"))
        service_key = e.concat(
            e.payload(ip, "saddr"),
            e.payload(ip, "daddr"),
            e.meta("l4proto"),
            e.payload("th", "dport"),
        )
        anything: dict[str, Json] = {}
        services: dict[str, Json] = {}
        others: dict[PortMatch, dict[str, Json]] = {}
        for allow in peers:
            if allow.source.version != family or allow.destination.version != family:
                continue
            pair = (str(allow.source), str(allow.destination))
            if not allow.ports:
                anything.setdefault(" . ".join(pair), e.concat(*pair))
            for port in allow.ports:
                if (
                    port.proto in L4_PORTS
                    and port.first is not None
                    and port.last in (None, port.first)
                ):
                    element = e.concat(*pair, port.proto, port.first)
                    services.setdefault(" . ".join([*pair, port.proto, str(port.first)]), element)
                else:
                    others.setdefault(port, {}).setdefault(" . ".join(pair), e.concat(*pair))
        if anything:
            name = f"{PEERS}-v{family}"
            objects.sets.append(named_set(name, [addr, addr], [], list(anything.values())))
            rules.append([e.match(pair_key, e.set_ref(name)), e.counter(), e.verdict("accept")])
        if services:
            name = f"{PEERS}-v{family}-ports"
            kind = [addr, addr, "inet_proto", "inet_service"]
            objects.sets.append(named_set(name, kind, [], list(services.values())))
            rules.append([e.match(service_key, e.set_ref(name)), e.counter(), e.verdict("accept")])
        for index, (port, pairs) in enumerate(others.items()):
            name = f"{PEERS}-v{family}-{index}"
            objects.sets.append(named_set(name, [addr, addr], [], list(pairs.values())))
            for match in port_match(port, family, original=False):
                rules.append(
                    [e.match(pair_key, e.set_ref(name)), *match, e.counter(), e.verdict("accept")]
                )
    rules += log_rules(objects.log, "peers", "d")
    rules.append([e.counter(), e.verdict("drop")])
    objects.chain(PEERS, rules)


def add_direction(
    objects: Objects,
    direction: Direction,
    ruleset: Ruleset,
    labels: list[str],
    default: Filter | None,
) -> None:
    """The dispatch chain of one direction, its verdict maps and the filter chains."""
    chains = filter_chains(direction, ruleset, labels)
    dispatch = address_only(direction, ruleset, chains)
    for family in (4, 6):
        name = f"{direction.chain}-v{family}"
        elements = dispatch_elements(objects, direction, ruleset, chains, family)
        objects.sets.append(verdict_map(name, family, elements))
        key = e.concat(
            e.payload(IP[family], direction.container_field), e.meta(direction.interface_key)
        )
        dispatch.append([e.vmap(key, name)])
    if default is not None:
        dispatch.append(
            [
                e.match(e.meta(direction.interface_key), e.set_ref("bridges")),
                e.goto(direction.default_chain),
            ]
        )
        if ruleset.plain_host_interfaces is None:
            dispatch.append(unseen_bridges(direction))
        add_filter(objects, direction.default_chain, default, direction)
    for flt, chain in chains.values():
        add_filter(objects, chain, flt, direction)
    objects.chain(direction.chain, dispatch)


def address_only(
    direction: Direction, ruleset: Ruleset, chains: dict[int, tuple[Filter, str]]
) -> list[list[Json]]:
    """Containers behind a bridge whose name cannot be written, matched by address alone
    (traffic within that bridge is then judged too: stricter, never looser). What their
    filter lets through is accepted here, which only ends our base chain: Docker's rules
    still judge it, and the rules for unseen interfaces, which would hold it, are not
    reached."""
    rules: list[list[Json]] = []
    for guard in ruleset.guards:
        flt = guard.ingress if direction is INGRESS else guard.egress
        for endpoint in guard.endpoints:
            if not plain_interface(endpoint.interface):
                ip = IP[endpoint.address.version]
                field = e.payload(ip, direction.container_field)
                match = e.match(field, str(endpoint.address))
                if flt is not None:
                    rules.append([match, e.jump(chains[id(flt)][1])])
                rules.append([match, e.verdict("accept")])
    return rules


def unseen_bridges(direction: Direction) -> list[Json]:
    """Docker names its bridges br-<network id>: one created while no agent was running is
    held by the defaults too (traffic within such a bridge is left alone, as on a known
    one). A non-Docker bridge named br-* is held as well."""
    other = "iifname" if direction.interface_key == "oifname" else "oifname"
    return [
        e.match(e.meta(direction.interface_key), DOCKER_BRIDGES),
        e.match(e.meta(other), DOCKER_BRIDGES, op="!="),
        e.goto(direction.default_chain),
    ]


def filter_chains(
    direction: Direction, ruleset: Ruleset, labels: list[str]
) -> dict[int, tuple[Filter, str]]:
    """One chain per filter object, named after the first container using it: replicas of
    one service share their entry's filter, so 10,000 of them cost one chain, and a plan
    still reads `in-web`, not a hash."""
    chains: dict[int, tuple[Filter, str]] = {}
    for guard, label in zip(ruleset.guards, labels, strict=True):
        flt = guard.ingress if direction is INGRESS else guard.egress
        if flt is not None and id(flt) not in chains:
            chains[id(flt)] = (flt, f"{direction.prefix}-{label}")
    return chains


def dispatch_elements(
    objects: Objects,
    direction: Direction,
    ruleset: Ruleset,
    chains: dict[int, tuple[Filter, str]],
    family: int,
) -> list[list[Json]]:
    """(address . interface) -> goto the guard's chain, or return when it has no filter."""
    elements: dict[tuple[str, str], Json] = {}
    for guard in ruleset.guards:
        flt = guard.ingress if direction is INGRESS else guard.egress
        target = e.goto(chains[id(flt)][1]) if flt else e.verdict("return")
        for endpoint in guard.endpoints:
            if endpoint.address.version == family and plain_interface(endpoint.interface):
                key = (objects.address(endpoint.address), endpoint.interface)
                elements.setdefault(key, target)
    return [
        [e.concat(address, interface), target] for (address, interface), target in elements.items()
    ]


def add_filter(objects: Objects, chain: str, flt: Filter, direction: Direction) -> None:
    """Allowed new connections return to the caller; everything else ends in a counted drop
    (or a reject). `except` entries are `!=` matches in front of each allowed peer."""
    rules: list[list[Json]] = []
    for index, allow in enumerate(flt.allows):
        peers = peer_matches(objects, f"{chain}-{index}", allow, direction)
        peers += list_peer_matches(allow, direction.peer_field)
        for family, peer in carved(peers, allow):
            carve = except_matches(allow, family, direction.peer_field) if family else []
            for ports in port_matches(allow, family):
                exprs = [*peer, *carve, *ports]
                rules.append([*without_implied_family(exprs), e.counter(), e.verdict("return")])
    rules += log_rules(objects.log, direction.chain, flt.tag)
    rules += refusal(flt.reject)
    objects.chain(chain, rules)


def carved(
    peers: list[tuple[int | None, list[Json]]], allow: Allow
) -> list[tuple[int | None, list[Json]]]:
    """With `except`, any address is split by family, as each family has its own excepts."""
    if not allow.carved:
        return peers
    found: list[tuple[int | None, list[Json]]] = []
    for family, match in peers:
        if family is None:
            found += [(f, [e.match(e.meta("nfproto"), NFPROTO[f]), *match]) for f in (4, 6)]
        else:
            found.append((family, match))
    return found


def peer_matches(
    objects: Objects, set_prefix: str, allow: Allow, direction: Direction
) -> list[tuple[int | None, list[Json]]]:
    """One (family, match) per family the peers contain; no peers means any address.

    One prefix is a plain comparison, up to SET_THRESHOLD an anonymous set, and beyond it
    a named interval set: each is a single lookup for the packet, and nft loads the
    first two much faster than thousands of named sets. A /0 is every address of its
    family: a match on the family (`meta nfproto`), never `ip saddr 0.0.0.0/0`.
    """
    if allow.fqdns:
        return list(fqdn.pattern_matches(allow.fqdns, direction.peer_field))
    if allow.peers is None:
        return [(None, [])]
    found: list[tuple[int | None, list[Json]]] = []
    if not allow.peers:
        return found
    by_family: dict[int, list[Network]] = {4: [], 6: []}
    for peer in allow.peers:
        by_family[peer.version].append(peer)
    for family, given in by_family.items():
        if not given:
            continue
        networks = collapsed(given)
        if is_any_of_family(networks[0]):
            found.append((family, [e.match(e.meta("nfproto"), NFPROTO[family])]))
            continue
        right: str | Json
        if len(networks) == 1:
            right = elements(networks, objects.address)[0]
        elif len(networks) <= SET_THRESHOLD:
            right = {"set": elements(networks, objects.address)}
        else:
            right = e.set_ref(f"{set_prefix}-v{family}")
            found_elements = elements(networks, objects.address)
            objects.sets.append(
                named_set(right[1:], ADDR_TYPE[family], ["interval"], found_elements)
            )
        found.append((family, [e.match(e.payload(IP[family], direction.peer_field), right)]))
    return found


def port_matches(allow: Allow, family: int | None) -> list[list[Json]]:
    """The protocol/port part of each rule; empty ports is one rule matching anything."""
    if not allow.ports:
        return [[]]
    return [m for port in allow.ports for m in port_match(port, family, allow.original)]


def port_match(port: PortMatch, family: int | None, original: bool) -> list[list[Json]]:
    if port.proto == "icmp":
        families = (4, 6) if family is None else (family,)
        return [[e.match(e.meta("l4proto"), ICMP[f])] for f in families]
    if port.first is None:
        return [[e.match(e.meta("l4proto"), port.proto)]]
    value = e.port_value(port.first, port.last if port.last is not None else port.first)
    if original:
        return [
            [
                e.match(e.meta("l4proto"), port.proto),
                e.match(e.ct("proto-dst", "original"), value),
            ]
        ]
    return [[e.match(e.payload(port.proto, "dport"), value)]]


def elements(networks: Sequence[Network], text: Callable[[Address], str] = str) -> list[str | Json]:
    """Host addresses bare and the rest as prefixes, the way nft prints them back."""
    return [
        text(n.network_address)
        if n.prefixlen == n.max_prefixlen
        else {"prefix": {"addr": text(n.network_address), "len": n.prefixlen}}
        for n in networks
    ]


def bridge_interfaces(ruleset: Ruleset) -> list[str]:
    """Every bridge the defaults hold, plus any interface a guard's endpoint sits behind."""
    names = [b.interface for b in ruleset.bridges]
    names += [p.interface for g in ruleset.guards for p in g.endpoints]
    return sorted({name for name in names if plain_interface(name)})


def guard_labels(guards: Sequence[Guard]) -> list[str]:
    """Readable chain names, one per guard and all distinct: the container's name, its key
    added only to tell twins apart, and a number when even that is not enough (keys are
    short ids, and a name plus a key can spell another container's name)."""
    names = [safe_name(g.name) for g in guards]
    counts = Counter(names)
    labels = [
        name if counts[name] == 1 else f"{name}-{safe_name(g.key)[:12]}"
        for g, name in zip(guards, names, strict=True)
    ]
    if len(set(labels)) == len(labels):
        return labels
    seen: set[str] = set()
    unique = []
    for label in labels:
        found, number = label, 1
        while found in seen:
            number += 1
            found = f"{label}-{number}"
        seen.add(found)
        unique.append(found)
    return unique


def safe_name(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:NAME_LIMIT]
    return cleaned if cleaned[:1].isalpha() else f"c{cleaned}"


def chain_ref(name: str) -> Json:
    return {"family": e.FAMILY, "table": e.TABLE, "name": name}


def base_chain(hook: str) -> Json:
    return {
        "chain": {
            **chain_ref(hook),
            "type": "filter",
            "hook": hook,
            "prio": PRIORITY,
            "policy": "accept",
        }
    }


def rule(chain: str, exprs: list[Json]) -> Json:
    return {"rule": {"family": e.FAMILY, "table": e.TABLE, "chain": chain, "expr": exprs}}


def named_set(
    name: str, kind: str | list[str], flags: list[str], elem: Sequence[str | Json]
) -> Json:
    body: Json = {"family": e.FAMILY, "name": name, "table": e.TABLE, "type": kind}
    if flags:
        body["flags"] = flags
    if elem:
        body["elem"] = list(elem)
    return {"set": body}


def verdict_map(name: str, family: int, elem: list[list[Json]]) -> Json:
    body: Json = {
        "family": e.FAMILY,
        "name": name,
        "table": e.TABLE,
        "type": [ADDR_TYPE[family], "ifname"],
        "map": "verdict",
    }
    if elem:
        body["elem"] = elem
    return {"map": body}
