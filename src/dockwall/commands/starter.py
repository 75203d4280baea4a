"""The policy `dockwall init` writes: today's behaviour, spelled out per container."""

from __future__ import annotations

from dockwall.model.state import COMPOSE_PROJECT, COMPOSE_SERVICE, Container, HostState
from dockwall.policy import parse_policy

HEADER = """\
# dockwall policy, written by `dockwall init` from the running containers.
# It keeps today's behaviour: every published port open to everyone, egress allowed.
# Tighten it, then `dockwall plan` and `dockwall apply`. Reference: README.md.
"""


def entry_lines(container: Container) -> list[str]:
    labels = container.labels
    if COMPOSE_PROJECT in labels and COMPOSE_SERVICE in labels:
        lines = [
            f"  - compose: {{project: {labels[COMPOSE_PROJECT]}, "
            f"service: {labels[COMPOSE_SERVICE]}}}"
        ]
    else:
        lines = [f"  - name: {container.name}"]
    published = sorted({(p.host_port, p.proto) for p in container.ports})
    if published:
        lines.append("    ingress:")
        lines += [f"      - {{port: {port}/{proto}, from: [any]}}" for port, proto in published]
    lines.append("    egress: allow")
    return lines


def starter_policy(state: HostState) -> str:
    """Built as text for readable comments, then parsed back so it is known to be valid."""
    lines = ["version: 1", "defaults:", "  ingress: allow", "  egress: allow", "containers:"]
    seen: set[str] = set()
    for container in sorted(state.containers, key=lambda c: c.name):
        entry = entry_lines(container)
        if entry[0] not in seen:
            seen.add(entry[0])
            lines += entry
    if not seen:
        lines[-1] = "containers: []"
    text = HEADER + "\n".join(lines) + "\n"
    parse_policy(text, "dockwall init")
    return text
