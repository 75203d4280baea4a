"""Containers as explain and audit need them: addresses, published ports, privileges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from docker.errors import DockerException

from dockwall.errors import DockwallError
from dockwall.explain.addresses import parse_address
from dockwall.explain.host import LiveContainer, Published
from dockwall.sources.docker_state import ports_of


def read_containers(make_client: Callable[[], Any]) -> list[LiveContainer]:
    """`make_client` connects as dockwall does everywhere (DOCKER_HOST, contexts)."""
    try:
        client = make_client()
        try:
            return [from_attrs(c.attrs) for c in client.containers.list()]
        finally:
            client.close()
    except (DockerException, OSError) as exc:
        raise DockwallError(f"cannot read Docker's state: {exc}") from exc


def from_attrs(attrs: dict[str, Any]) -> LiveContainer:
    """A container from `docker inspect` output."""
    settings = attrs.get("NetworkSettings") or {}
    host_config = attrs.get("HostConfig") or {}
    addresses: dict[int, list[int]] = {4: [], 6: []}
    for network in (settings.get("Networks") or {}).values():
        for key in ("IPAddress", "GlobalIPv6Address"):
            if network.get(key):
                version, value = parse_address(network[key])
                addresses[version].append(value)
    return LiveContainer(
        name=str(attrs.get("Name", "")).lstrip("/"),
        addresses={v: tuple(a) for v, a in addresses.items()},
        published=tuple(
            Published(p.host_ip, p.host_port, p.container_port, p.proto) for p in ports_of(attrs)
        ),
        network_mode=str(host_config.get("NetworkMode") or "bridge"),
        privileged=bool(host_config.get("Privileged")),
        cap_add=tuple(host_config.get("CapAdd") or ()),
        pid=int((attrs.get("State") or {}).get("Pid") or 0),
    )
