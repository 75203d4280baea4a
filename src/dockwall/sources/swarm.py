"""The Swarm routing mesh as this node sees it, and the tasks' gateway addresses.

A manager lists services with their ports, protocols and stack labels. A worker cannot
(the services API is a manager's), so it reads the ingress network's verbose view, which
names each service and its ports as text ("Target: 80, Publish: 8080") without protocol
or stack: such a port is filtered for TCP and UDP alike (a port nothing publishes never
sees a packet), and `stack:` entries reach it on managers only.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import docker
from docker.errors import DockerException

from dockwall.model.state import STACK_NAMESPACE, Address, Mesh, MeshPort

GWBRIDGE = "docker_gwbridge"
INGRESS_SBOX = "ingress-sbox"
VERBOSE_PORT = re.compile(r"Target: (\d+), Publish: (\d+)")


def gateway_addresses(client: docker.DockerClient) -> dict[str, tuple[Address, ...]]:
    """Container id -> its address on docker_gwbridge, which Docker leaves out of the
    container's own network list: a task's egress to the outside leaves through it."""
    try:
        network = client.api.inspect_network(GWBRIDGE)
    except DockerException:
        return {}
    found: dict[str, tuple[Address, ...]] = {}
    for key, endpoint in (network.get("Containers") or {}).items():
        address = interface_address(endpoint)
        if address is not None:
            found[str(key)] = (address,)
    return found


def interface_address(endpoint: dict[str, Any]) -> Address | None:
    try:
        return ipaddress.ip_interface(str(endpoint.get("IPv4Address") or "")).ip
    except ValueError:
        return None


def manager_ports(client: docker.DockerClient) -> list[MeshPort]:
    ports: list[MeshPort] = []
    for service in client.api.services():  # type: ignore[no-untyped-call]
        spec = service.get("Spec") or {}
        name = str(spec.get("Name") or "")
        stack = (spec.get("Labels") or {}).get(STACK_NAMESPACE)
        for port in (service.get("Endpoint") or {}).get("Ports") or []:
            if port.get("PublishMode", "ingress") != "ingress" or not port.get("PublishedPort"):
                continue
            proto = str(port.get("Protocol") or "tcp")
            if proto in ("tcp", "udp"):
                ports.append(
                    MeshPort(
                        name, stack, int(port["PublishedPort"]), int(port["TargetPort"]), proto
                    )
                )
    return ports


def verbose_ports(services: dict[str, Any]) -> list[MeshPort]:
    """The worker's view: service names and port pairs, no protocol, no stack."""
    ports: list[MeshPort] = []
    for name, info in services.items():
        for text in (info or {}).get("Ports") or []:
            match = VERBOSE_PORT.search(str(text))
            if name and match:
                target, published = int(match.group(1)), int(match.group(2))
                ports += [MeshPort(name, None, published, target, p) for p in ("tcp", "udp")]
    return ports


def read_mesh(client: docker.DockerClient) -> Mesh | None:
    """None when this host is no Swarm node or has no ingress sandbox yet."""
    try:
        info = client.info()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            return None
        sbox = gateway_addresses(client).get(INGRESS_SBOX)
        if not sbox:
            return None
        if swarm.get("ControlAvailable"):
            ports = manager_ports(client)
        else:
            ingress = client.api.inspect_network("ingress", verbose=True)
            ports = verbose_ports(ingress.get("Services") or {})
    except (DockerException, ValueError, KeyError, TypeError):
        return None
    return Mesh(GWBRIDGE, sbox, tuple(sorted(set(ports), key=lambda p: (p.published, p.proto))))
