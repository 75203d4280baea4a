"""Shared by the export tests: the example policy and policies built in code."""

from __future__ import annotations

from ipaddress import ip_address

from dockwall.export.view import View, build_view
from dockwall.lab.demo import EXAMPLE
from dockwall.model.state import Attachment, Container, HostState, PublishedPort
from dockwall.policy import Policy, parse_policy

EXAMPLE_TEXT = EXAMPLE.read_text()
SOURCE = "policy.yaml"


def example_policy() -> Policy:
    return parse_policy(EXAMPLE_TEXT, SOURCE)


def view_of(text: str, state: HostState | None = None) -> View:
    return build_view(parse_policy(text, SOURCE), state)


def container(
    name: str, address: str, ports: tuple[PublishedPort, ...] = (), **labels: str
) -> Container:
    return Container(
        id=name * 4,
        name=name,
        labels=dict(labels),
        attachments=(Attachment("bridge", "docker0", (ip_address(address),)),),
        ports=ports,
    )


def example_state() -> HostState:
    """The lab's sample containers, as `--live` would read them."""
    return HostState(
        containers=(
            container("web", "172.17.0.2", (PublishedPort(8080, 80, "tcp"),)),
            container("db", "172.30.0.2", (PublishedPort(5432, 5432, "tcp"),)),
            container(
                "worker",
                "172.30.0.3",
                **{"com.docker.compose.project": "shop", "com.docker.compose.service": "worker"},
            ),
        )
    )
