"""The neutral view every export target reads: one workload per policy entry, with its
directions resolved against the defaults and, with `--live`, the containers it matches.

Targets differ in what they can say, not in how they read the policy, so the reading
(defaults, `cidr_sources`, host port to container port) happens once, here. What a
target cannot express it reports as an ExportWarning instead of dropping it silently.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Generic, Literal, TypeVar

from dockwall.compile.matching import matches
from dockwall.errors import DockwallError
from dockwall.model.state import Container, HostState, PublishedPort
from dockwall.policy import (
    ContainerEntry,
    ContainerSelector,
    Defaults,
    EgressRule,
    IngressRule,
    Network,
    Policy,
    PortRange,
)
from dockwall.policy.rules import ListRef, Peer

Mode = Literal["allow", "deny", "list"]
LABEL_PREFIX = "dockwall."
RuleT = TypeVar("RuleT", IngressRule, EgressRule)


@dataclass(frozen=True)
class ExportWarning:
    """Something of the policy the target cannot express; `where` names the entry."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Warnings:
    """Collects warnings in the order they were found, without repeats."""

    items: list[ExportWarning] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        warning = ExportWarning(where, message)
        if warning not in self.items:
            self.items.append(warning)


@dataclass(frozen=True)
class Exported:
    """A target's output text and what it had to leave out."""

    text: str
    warnings: tuple[ExportWarning, ...]


@dataclass(frozen=True)
class Direction(Generic[RuleT]):
    """One direction of a workload: allow all, deny all, or the listed rules."""

    mode: Mode
    rules: tuple[RuleT, ...] = ()
    defaulted: bool = False

    @property
    def restricted(self) -> bool:
        return self.mode != "allow"


@dataclass(frozen=True)
class Workload:
    """A policy entry: what it selects, both directions, and (live) its containers."""

    selector: ContainerSelector
    where: str
    ingress: Direction[IngressRule]
    egress: Direction[EgressRule]
    containers: tuple[Container, ...] = ()
    restrict_dns: bool = False

    @property
    def published(self) -> tuple[PublishedPort, ...]:
        return tuple(dict.fromkeys(p for c in self.containers for p in c.ports))


@dataclass(frozen=True)
class View:
    """The policy as the targets read it; `unmatched` are live containers under defaults."""

    defaults: Defaults
    workloads: tuple[Workload, ...]
    live: bool = False
    unmatched: tuple[Container, ...] = ()


def build_view(policy: Policy, state: HostState | None = None) -> View:
    """The view of `policy`; with `state` (from `--live`) entries know their containers.
    Named lists are expanded into their CIDRs: no target reads dockwall's list files."""
    containers = state.containers if state is not None else ()
    expanded = expand_lists(policy)
    workloads = tuple(
        _workload(entry, expanded.defaults, containers) for entry in expanded.containers
    )
    claimed = {c.id for w in workloads for c in w.containers}
    unmatched = tuple(c for c in containers if c.id not in claimed)
    return View(policy.defaults, workloads, live=state is not None, unmatched=unmatched)


def _workload(
    entry: ContainerEntry, defaults: Defaults, containers: tuple[Container, ...]
) -> Workload:
    ingress: Direction[IngressRule] = (
        Direction(entry.ingress.mode, entry.ingress.rules)
        if entry.ingress is not None
        else Direction(defaults.ingress, defaulted=True)
    )
    egress: Direction[EgressRule] = (
        Direction(entry.egress.mode, entry.egress.rules)
        if entry.egress is not None
        else Direction(defaults.egress, defaulted=True)
    )
    where = f"{entry.location} ({entry.describe()})" if entry.location else entry.describe()
    mine = tuple(c for c in containers if matches(entry, c))
    restrict = defaults.restrict_dns if entry.restrict_dns is None else entry.restrict_dns
    return Workload(entry, where, ingress, egress, mine, restrict)


def expand_lists(policy: Policy) -> Policy:
    """The policy with every `list:NAME` replaced by the list's CIDRs."""
    if not policy.lists:
        return policy
    networks: dict[str, tuple[Network, ...]] = {}
    for name, contents in policy.loaded_lists.items():
        networks[name] = tuple(ipaddress.ip_network(text) for text in (*contents.v4, *contents.v6))

    def peers(found: tuple[Peer, ...] | None) -> tuple[Peer, ...] | None:
        if found is None:
            return None
        out: list[Peer] = []
        for peer in found:
            if isinstance(peer, ListRef):
                if peer.name not in networks:
                    raise DockwallError(f"list {peer.name} is used but its file was not read")
                out += networks[peer.name]
            else:
                out.append(peer)
        return tuple(out)

    def rule(found: RuleT) -> RuleT:
        field = "sources" if isinstance(found, IngressRule) else "destinations"
        update: dict[str, object] = {"excepts": peers(found.excepts) or ()}
        if field in found.model_fields_set:
            update[field] = peers(getattr(found, field))
        return found.model_copy(update=update)

    entries = []
    for entry in policy.containers:
        update = {}
        for direction in ("ingress", "egress"):
            given = getattr(entry, direction)
            if given is not None:
                update[direction] = given.model_copy(
                    update={"rules": tuple(rule(r) for r in given.rules)}
                )
        entries.append(entry.model_copy(update=update))
    return policy.model_copy(update={"containers": tuple(entries)})


def without_excepts(view: View, warnings: Warnings, target: str) -> View:
    """For targets with no deny rule: a rule with `except` is left out (narrower, never
    wider than the policy), with a warning saying so."""
    workloads = []
    for workload in view.workloads:
        ingress = _kept(workload.ingress, workload.where, warnings, target)
        egress = _kept(workload.egress, workload.where, warnings, target)
        workloads.append(replace(workload, ingress=ingress, egress=egress))
    return replace(view, workloads=tuple(workloads))


def _kept(
    direction: Direction[RuleT], where: str, warnings: Warnings, target: str
) -> Direction[RuleT]:
    kept = tuple(r for r in direction.rules if not r.excepts)
    if len(kept) != len(direction.rules):
        warnings.add(
            where,
            f"{target} cannot carve addresses out (except): the rules with except are left "
            "out, which allows less than the policy, never more",
        )
    return replace(direction, rules=kept)


def label_rule_warnings(view: View, warnings: Warnings) -> None:
    """Live containers may carry `dockwall.ingress/egress` labels; exports use the file."""
    for workload in view.workloads:
        for container in workload.containers:
            _label_warning(container, workload.where, warnings)
    for container in view.unmatched:
        _label_warning(container, f"container {container.name}", warnings)


def _label_warning(container: Container, where: str, warnings: Warnings) -> None:
    labels = sorted(k for k in container.own_labels if k.startswith(LABEL_PREFIX))
    if labels:
        warnings.add(
            where,
            f"container {container.name} has {', '.join(labels)}: label rules are not "
            "exported, only the policy file",
        )


def host_ports(rule: IngressRule, workload: Workload) -> tuple[PortRange, ...] | None:
    """The host ports a rule opens; None when they cannot be known (no `--live`)."""
    if rule.host_ports:
        return rule.host_ports
    if not workload.containers:
        return None
    published = workload.published
    if rule.container_ports:
        published = tuple(p for p in published if _covers(rule.container_ports, p))
    return tuple(
        dict.fromkeys(
            PortRange(proto=_proto(p.proto), first=p.host_port, last=p.host_port) for p in published
        )
    )


def container_ports(rule: IngressRule, workload: Workload) -> tuple[PortRange, ...] | None:
    """The ports inside the container a rule opens; None for every port, unknown.

    A host port maps to its container port through the live bindings; without them the
    host port stands for itself (the usual `-p 8080:8080`), and the caller warns. A rule
    naming no port covers every published port: with `--live` those are known (maybe
    none), without it they are not.
    """
    if rule.container_ports:
        return rule.container_ports
    if not rule.host_ports:
        if not workload.containers:
            return None
        return tuple(
            dict.fromkeys(
                PortRange(proto=_proto(p.proto), first=p.container_port, last=p.container_port)
                for p in workload.published
            )
        )
    mapped: list[PortRange] = []
    for port in rule.host_ports:
        bindings = [
            p for p in workload.published if p.proto == port.proto and _within(port, p.host_port)
        ]
        if bindings:
            mapped += [
                PortRange(proto=port.proto, first=b.container_port, last=b.container_port)
                for b in bindings
            ]
        else:
            mapped.append(port)
    return tuple(dict.fromkeys(mapped))


def unmapped_host_ports(rule: IngressRule, workload: Workload) -> list[PortRange]:
    """Host ports of a rule no live binding maps to a container port."""
    if rule.container_ports:
        return []
    return [
        port
        for port in rule.host_ports
        if port.proto != "icmp"
        and not any(
            p.proto == port.proto and _within(port, p.host_port) for p in workload.published
        )
    ]


def _covers(ranges: tuple[PortRange, ...], binding: PublishedPort) -> bool:
    return any(r.proto == binding.proto and _within(r, binding.container_port) for r in ranges)


def _within(port: PortRange, number: int) -> bool:
    return port.first is not None and port.last is not None and port.first <= number <= port.last


def _proto(text: str) -> Literal["tcp", "udp"]:
    return "udp" if text == "udp" else "tcp"


def families(networks: tuple[Network, ...] | None) -> dict[int, list[str]]:
    """CIDR strings by address family; None (any) is every address of both."""
    if networks is None:
        return {4: ["0.0.0.0/0"], 6: ["::/0"]}
    out: dict[int, list[str]] = {4: [], 6: []}
    for network in networks:
        out[network.version].append(str(network))
    return out


def title(selector: ContainerSelector) -> str:
    """A short readable name for what a selector selects: `web`, `shop-worker`."""
    if selector.compose is not None:
        return "-".join(filter(None, (selector.compose.project, selector.compose.service)))
    if selector.label is not None:
        return "-".join(filter(None, ("label", *selector.label)))
    if selector.stack is not None:
        return f"stack-{selector.stack}"
    return str(selector.service or selector.name)


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str, limit: int = 40) -> str:
    """A lowercase DNS-label-safe name for `text`, with a short hash when it had to
    change, so two different selectors never end up with the same name."""
    cleaned = _SLUG.sub("-", text.lower()).strip("-") or "x"
    if cleaned == text and len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"{cleaned[: limit - 7].rstrip('-')}-{digest}"
