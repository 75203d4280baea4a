"""Containers as explain and audit need them: addresses, published ports, privileges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockwall.errors import DockwallError
from dockwall.explain.addresses import parse_address
from dockwall.explain.state import Container, Published


def read_containers(make_client: Callable[[], Any]) -> list[Container]:
    try:
        client = make_client()
        try:
            return [from_attrs(c.attrs) for c in client.containers.list()]
        finally:
            client.close()
    except Exception as exc:
        raise DockwallError(f"cannot read Docker's state: {exc}") from exc


def from_attrs(attrs: dict[str, Any]) -> Container:
    """A container from `docker inspect` output."""
    settings = attrs.get("NetworkSettings") or {}
    host_config = attrs.get("HostConfig") or {}
    addresses: dict[int, list[int]] = {4: [], 6: []}
    for network in (settings.get("Networks") or {}).values():
        for key in ("IPAddress", "GlobalIPv6Address"):
            if network.get(key):
                version, value = parse_address(network[key])
                addresses[version].append(value)
    return Container(
        name=str(attrs.get("Name", "")).lstrip("/"),
        addresses={v: tuple(a) for v, a in addresses.items()},
        published=tuple(published_ports(settings.get("Ports") or {})),
        network_mode=str(host_config.get("NetworkMode") or "bridge"),
        privileged=bool(host_config.get("Privileged")),
        cap_add=tuple(host_config.get("CapAdd") or ()),
    )


def published_ports(ports: dict[str, Any]) -> list[Published]:
    found: list[Published] = []
    for key, bindings in ports.items():
        port, _, proto = key.partition("/")
        for binding in bindings or []:
            found.append(
                Published(
                    binding.get("HostIp", ""), int(binding["HostPort"]), int(port), proto or "tcp"
                )
            )
    return found
