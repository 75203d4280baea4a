"""The Swarm routing mesh as one guard: who may enter each ingress-mode published port.

A port published in ingress mode is DNATed on every node to the ingress sandbox's
address on docker_gwbridge; IPVS inside the sandbox then picks a task, on any node, and
source-NATs the connection, so past the entry node the client's address is gone. The
only place to judge the client is therefore the entry node's forward path towards the
sandbox, on the port the client dialled (conntrack's original destination). Modelled as
a guard on the sandbox's address, the mesh needs nothing new from either backend: each
service port becomes one Allow on that port, with the sources its entry allows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from dockwall.compile.ir import Allow, Endpoint, Filter, Guard, PortMatch
from dockwall.compile.matching import EntryIndex
from dockwall.errors import PolicyError
from dockwall.model.state import Container, Mesh, MeshPort
from dockwall.policy import ContainerEntry

IngressOf = Callable[[ContainerEntry | None], Filter | None]

MESH_NAME = "swarm-ingress"
MESH_KEY = hashlib.sha256(b"dockwall swarm routing mesh").hexdigest()[:12]


def applies(allow: Allow, port: MeshPort) -> bool:
    """Whether one allowed kind of connection covers the port: a host port is the
    published one, a container port the service's target port."""
    if not allow.ports:
        return True
    wanted = port.published if allow.original else port.target
    return any(
        p.proto == port.proto
        and p.first is not None
        and p.first <= wanted <= (p.last if p.last is not None else p.first)
        for p in allow.ports
    )


def port_allows(flt: Filter | None, port: MeshPort) -> tuple[Allow, ...]:
    """The Allows of one port, rewritten to match its published port on the original
    tuple; None (unrestricted) allows every source."""
    match = (PortMatch("tcp" if port.proto == "tcp" else "udp", port.published, port.published),)
    if flt is None:
        return (Allow(None, match, original=True),)
    return tuple(
        Allow(allow.peers, match, original=True) for allow in flt.allows if applies(allow, port)
    )


def port_filter(
    index: EntryIndex, ingress_of: IngressOf, port: MeshPort, held: list[str]
) -> Filter | None:
    """The ingress of the port's service entry (or the default, via `ingress_of(None)`);
    two entries matching the service hold the port closed, as for a container. The task
    stands in for every task of the service: entries see the labels Swarm gives them."""
    task = Container(id="", name=port.service, labels=port.labels)
    try:
        entry = index.entry_for(task)
    except PolicyError as exc:
        held.append(f"{exc}; Swarm service {port.service!r} port {port.published} is held closed")
        return Filter()
    return ingress_of(entry)


def mesh_guard(
    index: EntryIndex,
    mesh: Mesh | None,
    held: list[str],
    ingress_of: IngressOf,
    egress: Filter | None,
) -> Guard | None:
    """One guard for the sandbox: every other new connection to it is dropped (nothing
    but the mesh's DNAT leads there). The sandbox starts no connections of its own, so
    its egress is `egress`, the egress default, as for any address nobody claims."""
    if mesh is None or not mesh.addresses:
        return None
    allows: list[Allow] = []
    for port in sorted(mesh.ports, key=lambda p: (p.published, p.proto)):
        allows += port_allows(port_filter(index, ingress_of, port, held), port)
    endpoints = tuple(Endpoint(mesh.interface, address) for address in mesh.addresses)
    return Guard(
        MESH_KEY,
        MESH_NAME,
        "swarm routing mesh",
        endpoints,
        Filter(tuple(dict.fromkeys(allows))),
        egress,
    )


def mesh_entries(index: EntryIndex, mesh: Mesh | None) -> set[str]:
    """Entries the mesh uses: on a node without a task of the service they still govern
    its published ports, so they are not reported as matching nothing."""
    found: set[str] = set()
    for port in mesh.ports if mesh else ():
        task = Container(id="", name=port.service, labels=port.labels)
        found.update(entry.describe() for entry in index.matching(task))
    return found
