"""What the Docker host looks like right now: the input the compiler protects.

Plain frozen dataclasses, filled by `dockwall.sources.docker_state` from the Docker API
or built directly by tests, so the compiler never needs a daemon.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
SWARM_SERVICE = "com.docker.swarm.service.name"
STACK_NAMESPACE = "com.docker.stack.namespace"


@dataclass(frozen=True)
class Bridge:
    """A Docker network backed by a Linux bridge on this host."""

    network: str
    interface: str
    subnets: tuple[Network, ...] = ()


@dataclass(frozen=True)
class Attachment:
    """A container's addresses on one Docker network."""

    network: str
    interface: str
    addresses: tuple[Address, ...]


@dataclass(frozen=True)
class PublishedPort:
    """`-p [host_ip:]host_port:container_port/proto` as Docker reports it."""

    host_port: int
    container_port: int
    proto: str
    host_ip: str = ""

    def __str__(self) -> str:
        return f"{self.host_port}->{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    image_labels: dict[str, str] = field(default_factory=dict, hash=False)
    attachments: tuple[Attachment, ...] = ()
    ports: tuple[PublishedPort, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @cached_property
    def own_labels(self) -> dict[str, str]:
        """Labels set on the container itself; an image must not speak for its container.

        Docker merges image labels into the container's, so a label counts as the
        container's own only when it is absent from the image or set to another value.
        """
        return {k: v for k, v in self.labels.items() if self.image_labels.get(k) != v}


@dataclass(frozen=True)
class MeshPort:
    """A port a Swarm service publishes in ingress mode: the routing mesh opens it on
    every node of the cluster, whether or not a task of the service runs there."""

    service: str
    stack: str | None
    published: int
    target: int
    proto: str

    @property
    def labels(self) -> dict[str, str]:
        """The labels Swarm sets on the service's tasks, so entries match it the same way."""
        found = {SWARM_SERVICE: self.service}
        if self.stack is not None:
            found[STACK_NAMESPACE] = self.stack
        return found


@dataclass(frozen=True)
class Mesh:
    """The routing mesh on this node: the host DNATs each ingress port to the ingress
    sandbox's address on `interface` (docker_gwbridge), where IPVS balances it to a task
    on any node and source-NATs it. Only here is the client's address still visible."""

    interface: str
    addresses: tuple[Address, ...]
    ports: tuple[MeshPort, ...] = ()


@dataclass(frozen=True)
class HostState:
    """`interfaces`: the host's own network interfaces (not Docker bridges, not bridge
    ports), or None when they were not read. `mesh`: the Swarm routing mesh, when this
    host is a Swarm node with the ingress network."""

    bridges: tuple[Bridge, ...] = ()
    containers: tuple[Container, ...] = ()
    interfaces: tuple[str, ...] | None = None
    mesh: Mesh | None = None
