"""Reads the host state from Docker, connecting the way Docker's own CLI does.

Docker state is untrusted input too: odd values (a network without a bridge, a
container without addresses, host networking) are skipped with a note, never fatal.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from dockwall.errors import DockwallError
from dockwall.model.state import Address, Attachment, Bridge, Container, HostState, PublishedPort
from dockwall.sources.swarm import GWBRIDGE, gateway_addresses, read_mesh

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def context_host(config_dir: Path, name: str) -> str | None:
    """The endpoint of a named `docker context`, stored where the CLI keeps it."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest / "meta.json"
    try:
        host = json.loads(meta.read_text())["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return host if isinstance(host, str) else None


def docker_endpoint(env: dict[str, str] | None = None) -> str:
    """DOCKER_HOST first, then DOCKER_CONTEXT or the CLI's current context, then the socket."""
    env = dict(os.environ) if env is None else env
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    config_dir = Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")
    name = env.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((config_dir / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    if name and name != "default":
        host = context_host(config_dir, name)
        if host is None:
            raise DockwallError(f"docker context {name!r} not found in {config_dir}")
        return host
    return DEFAULT_SOCKET


def connect() -> docker.DockerClient:
    """DOCKER_HOST goes through the SDK's from_env, which also reads the TLS variables."""
    endpoint = docker_endpoint()
    try:
        if os.environ.get("DOCKER_HOST"):
            client = docker.from_env(timeout=30)
        else:
            client = docker.DockerClient(base_url=endpoint, timeout=30)
        client.ping()
    except DockerException as exc:
        raise DockwallError(f"cannot reach Docker at {endpoint}: {exc}") from exc
    return client


def bridge_interface(network: dict[str, Any]) -> str | None:
    if network.get("Driver") != "bridge":
        return None
    options = network.get("Options") or {}
    name = options.get("com.docker.network.bridge.name")
    return str(name) if name else f"br-{network['Id'][:12]}"


def bridge_of(network: dict[str, Any]) -> Bridge | None:
    interface = bridge_interface(network)
    if interface is None:
        return None
    subnets = []
    for config in (network.get("IPAM") or {}).get("Config") or []:
        try:
            subnets.append(ipaddress.ip_network(config.get("Subnet", ""), strict=False))
        except ValueError:
            continue
    return Bridge(network["Name"], interface, tuple(subnets))


def addresses_of(settings: dict[str, Any]) -> tuple[Address, ...]:
    found: list[Address] = []
    for key in ("IPAddress", "GlobalIPv6Address"):
        try:
            found.append(ipaddress.ip_address(settings.get(key) or ""))
        except ValueError:
            continue
    return tuple(found)


def ports_of(attrs: dict[str, Any]) -> tuple[PublishedPort, ...]:
    ports: set[PublishedPort] = set()
    for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        container_port, _, proto = str(key).partition("/")
        for binding in bindings or []:
            try:
                ports.add(
                    PublishedPort(
                        int(binding["HostPort"]),
                        int(container_port),
                        proto or "tcp",
                        str(binding.get("HostIp") or ""),
                    )
                )
            except (KeyError, ValueError, TypeError):
                continue
    return tuple(sorted(ports, key=lambda p: (p.host_port, p.proto, p.host_ip)))


def container_of(
    attrs: dict[str, Any], bridges: dict[str, Bridge], image_labels: dict[str, str]
) -> Container:
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    attachments = tuple(
        Attachment(name, bridges[name].interface, addresses_of(settings))
        for name, settings in sorted(networks.items())
        if name in bridges
    )
    return Container(
        id=attrs["Id"],
        name=str(attrs.get("Name", "")).lstrip("/"),
        labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
        image_labels=image_labels,
        attachments=attachments,
        ports=ports_of(attrs),
    )


class DockerReader:
    """Reads containers and bridges, remembering image labels (images rarely change), so
    the agent can refresh one container per event instead of the whole host."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.image_labels: dict[str, dict[str, str]] = {}

    def bridges(self) -> dict[str, Bridge]:
        return {b.network: b for n in self.client.api.networks() if (b := bridge_of(n)) is not None}

    def labels_of_image(self, image: str) -> dict[str, str]:
        if image not in self.image_labels:
            try:
                config = self.client.images.get(image).attrs.get("Config") or {}
                self.image_labels[image] = dict(config.get("Labels") or {})
            except DockerException:
                return {}
        return self.image_labels[image]

    def container(
        self,
        container_id: str,
        bridges: dict[str, Bridge],
        gateways: dict[str, tuple[Address, ...]] | None = None,
    ) -> Container | None:
        """The container if it is running; None once it stopped or went away. A Swarm
        task's address on docker_gwbridge (`gateways`, read when not given) is one of its
        attachments: its egress to the outside leaves through it."""
        try:
            attrs = self.client.api.inspect_container(container_id)
        except NotFound:
            return None
        if not (attrs.get("State") or {}).get("Running"):
            return None
        found = container_of(attrs, bridges, self.labels_of_image(str(attrs.get("Image", ""))))
        if GWBRIDGE not in bridges or any(a.network == GWBRIDGE for a in found.attachments):
            return found
        gateways = gateway_addresses(self.client) if gateways is None else gateways
        if found.id not in gateways:
            return found
        gateway = Attachment(GWBRIDGE, bridges[GWBRIDGE].interface, gateways[found.id])
        return replace(found, attachments=(*found.attachments, gateway))

    def state(self) -> HostState:
        """Running containers and bridge networks, as the firewall needs them, and the
        Swarm routing mesh when this host is a Swarm node."""
        bridges = self.bridges()
        gateways = gateway_addresses(self.client) if GWBRIDGE in bridges else {}
        containers = [
            c
            for summary in self.client.api.containers()
            if (c := self.container(summary["Id"], bridges, gateways)) is not None
        ]
        mesh = read_mesh(self.client) if GWBRIDGE in bridges else None
        return HostState(tuple(bridges.values()), tuple(containers), mesh=mesh)


def read_state(client: docker.DockerClient) -> HostState:
    return DockerReader(client).state()
