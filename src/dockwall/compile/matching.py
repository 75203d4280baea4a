"""Which containers a selector (a policy entry, a `from_containers` item) means."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dockwall.errors import Location, PolicyError
from dockwall.model.state import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    STACK_NAMESPACE,
    SWARM_SERVICE,
    Container,
)
from dockwall.policy import ContainerEntry, ContainerSelector, Policy

SWARM_KEYS = (("service", SWARM_SERVICE), ("stack", STACK_NAMESPACE))


def matches(selector: ContainerSelector, container: Container) -> bool:
    """Names are Docker's own; `compose:` and `label:` look at the labels set on the
    container itself (compose sets its labels there), never at those its image brought:
    an image must not choose its container's firewall."""
    if selector.name is not None:
        return container.name == selector.name
    labels = container.own_labels
    if selector.compose is not None:
        return labels.get(COMPOSE_PROJECT) == selector.compose.project and (
            selector.compose.service is None
            or labels.get(COMPOSE_SERVICE) == selector.compose.service
        )
    if selector.label is not None:
        key, value = selector.label
        return labels.get(key) == value
    if selector.service is not None:
        return labels.get(SWARM_SERVICE) == selector.service
    if selector.stack is not None:
        return labels.get(STACK_NAMESPACE) == selector.stack
    return False


def selected(
    selectors: Iterable[ContainerSelector], containers: Iterable[Container]
) -> list[Container]:
    chosen = list(selectors)
    return [c for c in containers if any(matches(s, c) for s in chosen)]


def where(entry: ContainerEntry) -> str:
    return f"{entry.location} ({entry.describe()})" if entry.location else entry.describe()


@dataclass(frozen=True)
class EntryIndex:
    """Entries by what they match on, so matching N containers costs N lookups, not
    N x entries comparisons (10,000 containers against 100 compose entries)."""

    by_key: dict[tuple[str, str, str | None], list[ContainerEntry]]

    @staticmethod
    def key(selector: ContainerSelector) -> tuple[str, str, str | None]:
        if selector.compose is not None:
            return ("compose", selector.compose.project, selector.compose.service)
        if selector.label is not None:
            return ("label", *selector.label)
        if selector.service is not None:
            return ("service", selector.service, None)
        if selector.stack is not None:
            return ("stack", selector.stack, None)
        return ("name", str(selector.name), None)

    @classmethod
    def of(cls, policy: Policy) -> EntryIndex:
        by_key: dict[tuple[str, str, str | None], list[ContainerEntry]] = {}
        for entry in policy.containers:
            by_key.setdefault(cls.key(entry), []).append(entry)
        return cls(by_key)

    def matching(self, container: Container) -> list[ContainerEntry]:
        labels = container.own_labels
        project = labels.get(COMPOSE_PROJECT)
        keys: list[tuple[str, str, str | None]] = [("name", container.name, None)]
        if project is not None:
            keys += [("compose", project, None), ("compose", project, labels.get(COMPOSE_SERVICE))]
        keys += [("label", k, v) for k, v in labels.items()]
        keys += [(kind, labels[key], None) for kind, key in SWARM_KEYS if key in labels]
        found = [entry for key in dict.fromkeys(keys) for entry in self.by_key.get(key, [])]
        return sorted(found, key=lambda e: e.index or 0)

    def entry_for(self, container: Container) -> ContainerEntry | None:
        """The one entry governing the container; two is a policy error naming both."""
        found = self.matching(container)
        if len(found) > 1:
            first, second = found[0], found[1]
            raise PolicyError(
                second.location or Location("policy"),
                f"containers[{second.index}]",
                f"container {container.name!r} is matched by two entries: {where(first)} and "
                f"{where(second)}; make the matchers disjoint",
            )
        return found[0] if found else None
