"""Policy + host state -> the firewall IR. Pure: no Docker, no firewall, no clock.

This is where "which entry governs which container" is decided, so a conflict (two
entries matching one container) is found here and reported before anything is applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockwall.compile.ir import Allow, Endpoint, Filter, Guard, PortMatch, Ruleset
from dockwall.errors import Location, PolicyError
from dockwall.model.state import COMPOSE_PROJECT, COMPOSE_SERVICE, Container, HostState
from dockwall.policy import (
    ContainerEntry,
    EgressPolicy,
    EgressRule,
    IngressPolicy,
    IngressRule,
    Policy,
    PortRange,
)


@dataclass(frozen=True)
class Compiled:
    """The IR plus what the user should hear about (entries that matched nothing)."""

    ruleset: Ruleset
    warnings: tuple[str, ...]
    assignments: dict[str, ContainerEntry | None]


def matches(entry: ContainerEntry, container: Container) -> bool:
    if entry.name is not None:
        return container.name == entry.name
    labels = container.labels
    if entry.compose is not None:
        return labels.get(COMPOSE_PROJECT) == entry.compose.project and (
            entry.compose.service is None or labels.get(COMPOSE_SERVICE) == entry.compose.service
        )
    if entry.label is not None:
        key, value = entry.label
        return labels.get(key) == value
    return False


def where(entry: ContainerEntry) -> str:
    return f"{entry.location} ({entry.describe()})" if entry.location else entry.describe()


@dataclass(frozen=True)
class EntryIndex:
    """Entries by container name, so matching N containers is not N x entries work."""

    by_name: dict[str, list[ContainerEntry]]
    others: tuple[ContainerEntry, ...]

    @classmethod
    def of(cls, policy: Policy) -> EntryIndex:
        by_name: dict[str, list[ContainerEntry]] = {}
        for entry in policy.containers:
            if entry.name is not None:
                by_name.setdefault(entry.name, []).append(entry)
        return cls(by_name, tuple(e for e in policy.containers if e.name is None))

    def matching(self, container: Container) -> list[ContainerEntry]:
        found = self.by_name.get(container.name, []) + [
            e for e in self.others if matches(e, container)
        ]
        return sorted(found, key=lambda e: e.index or 0)


def entry_for(index: EntryIndex, container: Container) -> ContainerEntry | None:
    """The one entry governing the container; two is a policy error naming both."""
    found = index.matching(container)
    if len(found) > 1:
        first, second = found[0], found[1]
        raise PolicyError(
            second.location or Location("policy"),
            f"containers[{second.index}]",
            f"container {container.name!r} is matched by two entries: {where(first)} and "
            f"{where(second)}; make the matchers disjoint",
        )
    return found[0] if found else None


def port_match(port: PortRange) -> PortMatch:
    return PortMatch(port.proto, port.first, port.last)


def ingress_allows(rule: IngressRule) -> tuple[Allow, ...]:
    """A rule naming host and container ports allows either; naming none allows any port."""
    if not rule.host_ports and not rule.container_ports:
        return (Allow(rule.sources),)
    allows = []
    if rule.host_ports:
        allows.append(Allow(rule.sources, tuple(map(port_match, rule.host_ports)), original=True))
    if rule.container_ports:
        allows.append(Allow(rule.sources, tuple(map(port_match, rule.container_ports))))
    return tuple(allows)


def egress_allow(rule: EgressRule) -> Allow:
    return Allow(rule.destinations, tuple(map(port_match, rule.ports)))


def ingress_filter(direction: IngressPolicy) -> Filter | None:
    if direction.mode == "allow":
        return None
    return Filter(tuple(a for rule in direction.rules for a in ingress_allows(rule)))


def egress_filter(direction: EgressPolicy) -> Filter | None:
    if direction.mode == "allow":
        return None
    return Filter(tuple(egress_allow(rule) for rule in direction.rules))


def verdict_filter(verdict: str) -> Filter | None:
    return None if verdict == "allow" else Filter()


def endpoints(container: Container) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint(attachment.interface, address)
        for attachment in container.attachments
        for address in attachment.addresses
    )


def guard(policy: Policy, container: Container, entry: ContainerEntry) -> Guard:
    defaults = policy.defaults
    ingress = ingress_filter(entry.ingress) if entry.ingress else verdict_filter(defaults.ingress)
    egress = egress_filter(entry.egress) if entry.egress else verdict_filter(defaults.egress)
    return Guard(
        container.short_id, container.name, entry.describe(), endpoints(container), ingress, egress
    )


def compile_policy(policy: Policy, state: HostState) -> Compiled:
    """Containers without an entry are left to the defaults, which cover whole bridges."""
    index = EntryIndex.of(policy)
    assignments = {c.name: entry_for(index, c) for c in state.containers}
    guards = tuple(
        guard(policy, c, entry)
        for c in sorted(state.containers, key=lambda c: c.name)
        if (entry := assignments[c.name]) is not None
    )
    used = {e.describe() for e in assignments.values() if e is not None}
    warnings = tuple(
        f"{where(e)} matches no running container"
        for e in policy.containers
        if e.describe() not in used
    )
    ruleset = Ruleset(
        bridges=tuple(sorted(state.bridges, key=lambda b: b.interface)),
        guards=guards,
        default_ingress=verdict_filter(policy.defaults.ingress),
        default_egress=verdict_filter(policy.defaults.egress),
    )
    return Compiled(ruleset, warnings, assignments)
