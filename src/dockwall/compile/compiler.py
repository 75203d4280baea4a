"""Policy + host state -> the firewall IR. Pure: no Docker, no firewall, no clock.

This is where "which entry governs which container" is decided. A container that cannot
be resolved (two entries matching it, a bad label, a bridge name that cannot be written)
never stops the others from being reconciled: it is held closed, or its bad label
ignored, with a warning naming it, and listed in `Compiled.held` for `apply --strict`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dockwall.compile.dns import dns_plan
from dockwall.compile.ir import (
    Allow,
    DropLog,
    Endpoint,
    Filter,
    Guard,
    LogLimit,
    PeerAllow,
    PortMatch,
    Ruleset,
    plain_interface,
)
from dockwall.compile.labels import LabelRules, label_rules
from dockwall.compile.matching import EntryIndex, selected, where
from dockwall.compile.normalize import ports
from dockwall.compile.origin import DEFAULTS, entry_tag, held_tag, joined, label_tag
from dockwall.compile.peers import (
    address_sets,
    check_label_lists,
    names_used,
    peer_spec,
    with_peers,
)
from dockwall.compile.swarm import mesh_entries, mesh_guard
from dockwall.errors import PolicyError
from dockwall.model.state import Container, HostState
from dockwall.policy import (
    ContainerEntry,
    EgressPolicy,
    EgressRule,
    IngressPolicy,
    IngressRule,
    Policy,
    PortRange,
)
from dockwall.policy.logging import LogPolicy, LogRate


@dataclass(frozen=True)
class Compiled:
    """The IR plus what the user should hear about: entries that matched nothing, and
    (also in `held`) containers that could not be resolved as written."""

    ruleset: Ruleset
    warnings: tuple[str, ...]
    held: tuple[str, ...] = ()


@dataclass(frozen=True)
class Governed:
    """A container with everything that speaks for it: its entry and its own labels."""

    container: Container
    entry: ContainerEntry | None
    labels: LabelRules
    closed: bool = False
    matched: list[ContainerEntry] = field(default_factory=list)

    @property
    def speaks(self) -> bool:
        """Whether anything but the defaults governs it."""
        return self.closed or bool(self.entry or self.labels.ingress or self.labels.egress)

    @property
    def origin(self) -> str:
        if self.closed:
            return "held closed (conflicting entries)"
        parts = [self.entry.describe()] if self.entry else []
        if self.labels.ingress or self.labels.egress:
            parts.append("labels")
        return " + ".join(parts) or "defaults"


def port_match(port: PortRange) -> PortMatch:
    return PortMatch(port.proto, port.first, port.last)


def port_matches(given: tuple[PortRange, ...]) -> tuple[PortMatch, ...]:
    """Merged (see normalize): every backend then renders one list one way."""
    return ports(map(port_match, given))


def ingress_allows(rule: IngressRule) -> tuple[Allow, ...]:
    """A rule naming host and container ports allows either; naming none allows any port."""
    if rule.peer_sources == ():
        return ()
    sources = peer_spec(rule.peer_sources, rule.excepts)
    if not rule.host_ports and not rule.container_ports:
        return (with_peers(sources),)
    allows = []
    if rule.host_ports:
        allows.append(with_peers(sources, port_matches(rule.host_ports), original=True))
    if rule.container_ports:
        allows.append(with_peers(sources, port_matches(rule.container_ports)))
    return tuple(allows)


def egress_allows(rule: EgressRule) -> tuple[Allow, ...]:
    """Addresses, lists and names side by side: a rule with both allows either."""
    found = []
    if rule.peer_destinations != ():
        spec = peer_spec(rule.peer_destinations, rule.excepts)
        found.append(with_peers(spec, port_matches(rule.ports)))
    if rule.fqdns:
        found.append(Allow((), port_matches(rule.ports), fqdns=tuple(sorted(rule.fqdns))))
    return tuple(found)


def union(a: Filter | None, b: Filter | None) -> Filter | None:
    """Both allow-lists together; allowing everything absorbs any list."""
    if a is None or b is None:
        return None
    return Filter(tuple(dict.fromkeys(a.allows + b.allows)), a.reject, joined(a.tag, b.tag))


def ingress_filter(direction: IngressPolicy, tag: str, reject: bool = False) -> Filter | None:
    if direction.mode == "allow":
        return None
    allows = tuple(a for rule in direction.rules for a in ingress_allows(rule))
    return Filter(allows, reject=reject, tag=tag)


def egress_filter(direction: EgressPolicy, tag: str, reject: bool = False) -> Filter | None:
    if direction.mode == "allow":
        return None
    allows = tuple(a for rule in direction.rules for a in egress_allows(rule))
    return Filter(allows, reject=reject, tag=tag)


def verdict_filter(verdict: str, reject: bool = False) -> Filter | None:
    return None if verdict == "allow" else Filter(reject=reject, tag=DEFAULTS)


def rejects(policy: Policy, entry: ContainerEntry | None) -> bool:
    """`deny_with` of the entry, else of the defaults: whether refusals are rejects."""
    chosen = entry.deny_with if entry and entry.deny_with else policy.defaults.deny_with
    return chosen == "reject"


def log_limit(rate: LogRate | None) -> LogLimit | None:
    """The rate in the largest unit where its count is whole (how the kernel prints it)."""
    if rate is None:
        return None
    count, unit = rate.rate
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
    for bigger in ("second", "minute", "hour", "day"):
        scaled, rest = divmod(count * seconds[bigger], seconds[unit])
        if rest == 0 and scaled >= 1:
            return LogLimit(scaled, bigger, rate.burst)
    return LogLimit(count, unit, rate.burst)


def drop_log(log: LogPolicy) -> DropLog | None:
    if not log.enabled:
        return None
    return DropLog(log.group, log_limit(log.ingress), log_limit(log.egress), log_limit(log.peers))


def endpoints(container: Container) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint(attachment.interface, address)
        for attachment in container.attachments
        for address in attachment.addresses
    )


def effective(
    base: Filter | None, label: Filter | None, has_label: bool, has_entry: bool
) -> Filter | None:
    """An entry's rules plus the label's; without an entry the label replaces the default."""
    if not has_label:
        return base
    return union(base, label) if has_entry else label


class Filters:
    """Each policy direction becomes a Filter once, however many containers it governs
    (10,000 replicas of 100 services compile 100 filters, not 10,000)."""

    def __init__(self) -> None:
        self.done: dict[tuple[int, bool], Filter | None] = {}

    def ingress(self, direction: IngressPolicy, tag: str, reject: bool) -> Filter | None:
        key = (id(direction), reject)
        if key not in self.done:
            self.done[key] = ingress_filter(direction, tag, reject)
        return self.done[key]

    def egress(self, direction: EgressPolicy, tag: str, reject: bool) -> Filter | None:
        key = (id(direction), reject)
        if key not in self.done:
            self.done[key] = egress_filter(direction, tag, reject)
        return self.done[key]


def guard_keys(governed: list[Governed]) -> dict[str, str]:
    """Short ids name chains; where two share one (possible, if unlikely), both get a
    longer prefix, so no container's rules ever land in another's chain."""
    shorts = Counter(g.container.short_id for g in governed)
    return {
        g.container.id: g.container.id[: 12 if shorts[g.container.short_id] == 1 else 16]
        for g in governed
    }


def guard(policy: Policy, governed: Governed, filters: Filters, key: str) -> Guard:
    entry, labels, defaults = governed.entry, governed.labels, policy.defaults
    reject = rejects(policy, entry)
    if governed.closed:
        container = governed.container
        closed_in = Filter(reject=reject, tag=held_tag(key))
        closed_out = Filter(reject=reject, tag=held_tag(key))
        return Guard(
            key, container.name, governed.origin, endpoints(container), closed_in, closed_out
        )
    tag = entry_tag(entry) if entry else DEFAULTS
    base_in = (
        filters.ingress(entry.ingress, tag, reject)
        if entry and entry.ingress
        else verdict_filter(defaults.ingress, reject)
    )
    base_out = (
        filters.egress(entry.egress, tag, reject)
        if entry and entry.egress
        else verdict_filter(defaults.egress, reject)
    )
    label_in = ingress_filter(labels.ingress, label_tag(key), reject) if labels.ingress else None
    label_out = egress_filter(labels.egress, label_tag(key), reject) if labels.egress else None
    container = governed.container
    return Guard(
        key,
        container.name,
        governed.origin,
        endpoints(container),
        effective(base_in, label_in, labels.ingress is not None, entry is not None),
        effective(base_out, label_out, labels.egress is not None, entry is not None),
    )


def shared_pairs(a: Container, b: Container) -> list[tuple[Endpoint, Endpoint]]:
    """Address pairs of one family on a bridge both containers are attached to."""
    return [
        (x, y)
        for x in endpoints(a)
        for y in endpoints(b)
        if x.interface == y.interface and x.address.version == y.address.version
    ]


def ingress_rules(item: Governed) -> list[IngressRule]:
    found = (item.entry.ingress if item.entry else None, item.labels.ingress)
    return [rule for d in found if d is not None for rule in d.rules]


def egress_rules(item: Governed) -> list[EgressRule]:
    found = (item.entry.egress if item.entry else None, item.labels.egress)
    return [rule for d in found if d is not None for rule in d.rules]


def pair_allows(
    sender: Container, receiver: Container, ports: tuple[PortMatch, ...]
) -> list[PeerAllow]:
    if sender is receiver:
        return []
    return [PeerAllow(x.address, y.address, ports) for x, y in shared_pairs(sender, receiver)]


def peer_allows(governed: list[Governed], state: HostState) -> tuple[PeerAllow, ...]:
    """from_containers admit senders; to_containers let a sender reach receivers. Between
    peers there is no port publishing, so every port named is the receiver's own."""
    allows: list[PeerAllow] = []
    for item in governed:
        me = item.container
        for rule in ingress_rules(item):
            ports = port_matches(rule.host_ports + rule.container_ports)
            for other in selected(rule.from_containers, state.containers):
                allows += pair_allows(other, me, ports)
        for egress in egress_rules(item):
            for other in selected(egress.to_containers, state.containers):
                allows += pair_allows(me, other, port_matches(egress.ports))
    return tuple(dict.fromkeys(allows))


def governed_one(
    container: Container, index: EntryIndex, policy: Policy, held: list[str]
) -> Governed:
    """Two entries matching one container hold it closed: choosing either could open
    what the other closes, and a label anyone starting a container can set must never
    stop the rest of the host from being reconciled. A bad label is ignored."""
    try:
        entry = index.entry_for(container)
    except PolicyError as exc:
        held.append(f"{exc}; container {container.name!r} is held closed until then")
        return Governed(
            container, None, LabelRules(), closed=True, matched=index.matching(container)
        )
    try:
        labels = label_rules(container, policy.labels)
        label_lists(container, labels, policy)
    except PolicyError as exc:
        held.append(f"{exc} (label ignored)")
        labels = LabelRules()
    return Governed(container, entry, labels)


def label_lists(container: Container, labels: LabelRules, policy: Policy) -> None:
    for direction, found in (("ingress", labels.ingress), ("egress", labels.egress)):
        if found is not None:
            where = f"label dockwall.{direction} on container {container.name}"
            check_label_lists(found.rules, policy, where)


def odd_interfaces(state: HostState) -> list[str]:
    """Bridges whose names cannot be written into rules: held by the defaults as unknown
    interfaces, their containers' own rules matched by address alone."""
    return [
        f"network {b.network!r}: bridge name {b.interface!r} cannot be written into firewall "
        "rules; its traffic is held by the defaults, containers on it are matched by address"
        for b in state.bridges
        if not plain_interface(b.interface)
    ]


def governed_containers(policy: Policy, state: HostState, held: list[str]) -> list[Governed]:
    """Every container with its entry and labels; problems are collected in `held`."""
    index = EntryIndex.of(policy)
    return [
        governed_one(c, index, policy, held) for c in sorted(state.containers, key=lambda c: c.name)
    ]


def compile_policy(policy: Policy, state: HostState) -> Compiled:
    """Containers with neither entry nor labels are left to the defaults, which cover
    whole bridges (and every interface that is not the host's own)."""
    held: list[str] = []
    reject = policy.defaults.deny_with == "reject"
    default_in = verdict_filter(policy.defaults.ingress, reject)
    governed = governed_containers(policy, state, held)
    held += odd_interfaces(state)
    filters = Filters()
    chosen = [g for g in governed if g.speaks]
    keys = guard_keys(chosen)
    guards = tuple(guard(policy, g, filters, keys[g.container.id]) for g in chosen)
    index = EntryIndex.of(policy)
    mesh = mesh_guard(
        index,
        state.mesh,
        held,
        lambda e: (
            filters.ingress(e.ingress, entry_tag(e), rejects(policy, e))
            if e and e.ingress
            else default_in
        ),
        verdict_filter(policy.defaults.egress, reject),
    )
    matched = {e.describe() for g in governed for e in ([g.entry] if g.entry else g.matched)}
    matched |= mesh_entries(index, state.mesh)
    unused = [
        f"{where(e)} matches no running container"
        for e in policy.containers
        if e.describe() not in matched
    ]
    every_guard = (*guards, mesh) if mesh else guards
    used = names_used(f for g in every_guard for f in (g.ingress, g.egress))
    ruleset = Ruleset(
        dns=dns_plan(policy, chosen, guards),
        bridges=tuple(sorted(state.bridges, key=lambda b: b.interface)),
        guards=every_guard,
        default_ingress=default_in,
        default_egress=verdict_filter(policy.defaults.egress, reject),
        isolate_peers=policy.defaults.peers == "deny",
        peers=peer_allows(governed, state) if policy.defaults.peers == "deny" else (),
        host_interfaces=state.interfaces,
        lists=address_sets(used, policy.loaded_lists),
        log=drop_log(policy.log),
    )
    return Compiled(ruleset, tuple(held + unused), tuple(held))
