"""Warnings about a valid policy: parts that can never take effect as written.

A policy can be valid and still not say what its author meant: an entry no container can
ever match, a rule that adds nothing because an earlier one already allows it, an address
already inside another in the same list. None of these is an error (the firewall does
exactly what the file says), but each is usually a mistake, and `dockwall check` reports
them at the line and column of the YAML the user wrote, without Docker or a firewall.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dockwall.errors import Location
from dockwall.policy.coverage import (
    LOOPBACK,
    allows_anything,
    networks_of,
    peer_selectors,
    port_within,
    rule_covers,
    within,
)
from dockwall.policy.fields import Network
from dockwall.policy.model import ContainerEntry, Policy
from dockwall.policy.problems import Path, clip
from dockwall.policy.rules import (
    ContainerSelector,
    DirectionPolicy,
    EgressRule,
    IngressRule,
    PortRange,
)
from dockwall.policy.yamlsource import Document, format_path

__all__ = ["PolicyWarning", "policy_warnings"]

COMPOSE_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]*")
T = TypeVar("T")


@dataclass(frozen=True)
class PolicyWarning:
    """Shaped like a PolicyError (place, field, message), but the policy still loads."""

    location: Location
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Linter:
    """Walks the validated policy and its YAML side by side: the model says what a rule
    means, the YAML says where it was written."""

    policy: Policy
    document: Document

    def at(self, path: Path, message: str, *, see: Path | None = None) -> PolicyWarning:
        if see is not None:
            other = self.document.location(see)
            message += f" (at line {other.line}, column {other.column})"
        return PolicyWarning(self.document.location(path), format_path("", path), message)

    def yaml(self, path: Path) -> Any:
        node: Any = self.document.data
        for step in path:
            node = node[step]
        return node

    @property
    def peers_isolated(self) -> bool:
        return self.policy.defaults.peers == "deny"


def policy_warnings(policy: Policy, document: Document) -> list[PolicyWarning]:
    """Every warning for the policy, in the order a reader meets them in the file."""
    lint = Linter(policy, document)
    found = list(label_warnings(lint))
    for index, entry in enumerate(policy.containers):
        found += entry_warnings(lint, entry, ("containers", index))
    return sorted(found, key=lambda w: (w.location.line or 0, w.location.column or 0))


def label_warnings(lint: Linter) -> Iterator[PolicyWarning]:
    labels = lint.policy.labels
    written = lint.document.data.get("labels", {}) if isinstance(lint.document.data, dict) else {}
    if not labels.trust:
        for key in ("ingress_from", "egress_to", "containers"):
            if key in written:
                yield lint.at(
                    ("labels", key), "has no effect: labels.trust is false, so labels are ignored"
                )
    for key, networks in (("ingress_from", labels.ingress_from), ("egress_to", labels.egress_to)):
        if networks is not None:
            yield from covered_addresses(lint, ("labels", key), networks)


def entry_warnings(lint: Linter, entry: ContainerEntry, path: Path) -> Iterator[PolicyWarning]:
    yield from matcher_warnings(lint, entry, path)
    if entry.ingress is None and entry.egress is None:
        yield lint.at(
            path,
            "has neither ingress nor egress: its containers get the defaults as if it were "
            "not there (except that their labels add to the defaults instead of replacing them)",
        )
    if entry.ingress is not None:
        yield from direction_warnings(lint, entry.ingress, (*path, "ingress"))
    if entry.egress is not None:
        yield from direction_warnings(lint, entry.egress, (*path, "egress"))


def matcher_warnings(
    lint: Linter, selector: ContainerSelector, path: Path
) -> Iterator[PolicyWarning]:
    """Matchers Docker or Compose can never produce: they match no container, ever."""
    if selector.name is not None and len(selector.name) < 2:
        yield lint.at(
            (*path, "name"),
            f"Docker container names have at least two characters: {clip(selector.name)} "
            "matches no container",
        )
    project = selector.compose.project if selector.compose else None
    if project is not None and not COMPOSE_PROJECT.fullmatch(project):
        likely = re.sub(r"[^a-z0-9_-]", "", project.lower()).lstrip("_-")
        hint = f"; did you mean {likely!r}?" if likely else ""
        yield lint.at(
            (*path, "compose", "project"),
            "Compose names projects with lowercase letters, digits, '-' and '_' only: "
            f"{clip(project)} matches no container{hint}",
        )


def direction_warnings(
    lint: Linter, direction: DirectionPolicy[Any], path: Path
) -> Iterator[PolicyWarning]:
    if direction.mode != "list":
        return
    if not direction.rules:
        yield lint.at(path, "an empty list allows nothing: write deny if that is what you mean")
        return
    rules: Sequence[IngressRule | EgressRule] = direction.rules
    for index, rule in enumerate(rules):
        yield from rule_warnings(lint, rule, (*path, index))
        earlier = shadowing_rule(rules, index, lint.peers_isolated)
        if earlier is not None:
            yield lint.at(
                (*path, index),
                f"adds nothing: rule [{earlier}] of this list already allows all of it",
                see=(*path, earlier),
            )
    if not any(allows_anything(rule, lint.peers_isolated) for rule in rules):
        yield lint.at(path, "no rule in this list allows anything, so it denies all traffic")


def shadowing_rule(
    rules: Sequence[IngressRule | EgressRule], index: int, peers_isolated: bool
) -> int | None:
    """The first earlier rule that already allows all that rule `index` allows."""
    rule = rules[index]
    if not allows_anything(rule, peers_isolated):
        return None
    return next(
        (
            earlier
            for earlier in range(index)
            if allows_anything(rules[earlier], peers_isolated)
            and rule_covers(rules[earlier], rule, peers_isolated)
        ),
        None,
    )


def rule_warnings(
    lint: Linter, rule: IngressRule | EgressRule, path: Path
) -> Iterator[PolicyWarning]:
    written = lint.yaml(path)
    peers_key = "from_containers" if isinstance(rule, IngressRule) else "to_containers"
    if peer_selectors(rule) and not lint.peers_isolated:
        nothing = "; this rule allows nothing" if networks_of(rule) == () else ""
        yield lint.at(
            (*path, peers_key),
            f"{peers_key} only takes effect with defaults.peers: deny (containers on a "
            f"shared network reach each other already){nothing}",
        )
    for index, selector in enumerate(peer_selectors(rule)):
        yield from matcher_warnings(lint, selector, (*path, peers_key, index))
    address_key = "from" if isinstance(rule, IngressRule) else "to"
    networks = networks_of(rule)
    if networks and address_key in written:
        yield from covered_addresses(lint, (*path, address_key), networks)
        if isinstance(rule, EgressRule):
            yield from loopback_destinations(lint, (*path, address_key), networks)
    for key, ports in port_lists(rule):
        if key in written:
            yield from covered_ports(lint, (*path, key), ports)


def port_lists(rule: IngressRule | EgressRule) -> list[tuple[str, tuple[PortRange, ...]]]:
    """(YAML key, ports) for each port list the rule may have; `port:` holds one only."""
    if isinstance(rule, IngressRule):
        return [("ports", rule.host_ports), ("container_ports", rule.container_ports)]
    return [("ports", rule.ports)]


def covered_addresses(
    lint: Linter, path: Path, networks: Sequence[Network]
) -> Iterator[PolicyWarning]:
    """An address inside another of the same list (or a duplicate) adds nothing."""
    for index, wider in covered_items(networks, within):
        yield lint.at(
            (*path, index),
            f"{networks[index]} is already covered by {networks[wider]} in this list",
            see=(*path, wider),
        )


def covered_ports(lint: Linter, path: Path, ports: Sequence[PortRange]) -> Iterator[PolicyWarning]:
    for index, wider in covered_items(ports, port_within):
        yield lint.at(
            (*path, index),
            f"{ports[index]} is already covered by {ports[wider]} in this list",
            see=(*path, wider),
        )


def covered_items(items: Sequence[T], inside: Callable[[T, T], bool]) -> Iterator[tuple[int, int]]:
    """(index, index of a wider item) for each item another covers; of two equal items
    the later one is the one that adds nothing."""
    for index, item in enumerate(items):
        wider = next(
            (
                other
                for other, candidate in enumerate(items)
                if other != index
                and inside(item, candidate)
                and (item != candidate or other < index)
            ),
            None,
        )
        if wider is not None:
            yield index, wider


def loopback_destinations(
    lint: Linter, path: Path, networks: Sequence[Network]
) -> Iterator[PolicyWarning]:
    for index, network in enumerate(networks):
        if any(within(network, block) for block in LOOPBACK):
            yield lint.at(
                (*path, index),
                f"{network} is the container's own loopback: that traffic never leaves the "
                "container, so no firewall rule ever sees it",
            )
