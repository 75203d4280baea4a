"""The policy `dockwall init` writes: today's behaviour, spelled out per container."""

from __future__ import annotations

from pydantic import ValidationError

from dockwall.errors import DockwallError
from dockwall.model.state import COMPOSE_PROJECT, COMPOSE_SERVICE, Container, HostState
from dockwall.policy import (
    ComposeMatch,
    ContainerEntry,
    EgressPolicy,
    IngressPolicy,
    IngressRule,
    Policy,
    PortRange,
    policy_to_yaml,
)

HEADER = """\
# dockwall policy, written by `dockwall init` from the running containers.
# It keeps today's behaviour: every published port open to everyone, egress allowed.
# Tighten it, then `dockwall plan` and `dockwall apply`. Reference: README.md.
"""


def starter_entry(container: Container) -> ContainerEntry:
    """A compose service is selected as such (it outlives its container's name);
    every published port is open to everyone and egress stays allowed."""
    labels = container.labels
    published = sorted({(p.host_port, p.proto) for p in container.ports})
    rules = tuple(
        IngressRule(host_ports=(PortRange.model_validate(f"{port}/{proto}"),))
        for port, proto in published
    )
    ingress = IngressPolicy(mode="list", rules=rules) if rules else None
    egress = EgressPolicy(mode="allow")
    if COMPOSE_PROJECT in labels and COMPOSE_SERVICE in labels:
        compose = ComposeMatch(project=labels[COMPOSE_PROJECT], service=labels[COMPOSE_SERVICE])
        return ContainerEntry(compose=compose, ingress=ingress, egress=egress)
    return ContainerEntry(name=container.name, ingress=ingress, egress=egress)


def starter_policy(state: HostState) -> str:
    """Built as a Policy and written by `policy_to_yaml`, the one way a policy is
    written out; the models' validators reject what a policy cannot name. Replicas of
    one compose service share one entry (the first one's ports)."""
    entries: dict[str, ContainerEntry] = {}
    for container in sorted(state.containers, key=lambda c: c.name):
        try:
            entry = starter_entry(container)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise DockwallError(f"dockwall init: container {container.name!r}: {message}") from exc
        entries.setdefault(entry.describe(), entry)
    return HEADER + policy_to_yaml(Policy(version=1, containers=tuple(entries.values())))
