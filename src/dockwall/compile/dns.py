"""Which containers resolve through dockwall's DNS forwarder, and for which patterns.

A container is a DNS client when its egress is restricted and either names a pattern
(`to_fqdn`) or must not resolve anything else (`restrict_dns`). Only clients are
redirected: a container without name rules keeps its DNS as Docker set it up, so an
agent that is down never takes name resolution away from containers that do not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dockwall.compile.ir import Dns, DnsClient, Filter, Guard
from dockwall.policy import ContainerEntry, Policy


class Speaker(Protocol):
    """What the compiler knows about a governed container (compiler.Governed)."""

    @property
    def entry(self) -> ContainerEntry | None: ...


def filter_patterns(flt: Filter | None) -> tuple[str, ...]:
    if flt is None:
        return ()
    return tuple(sorted({p for allow in flt.allows for p in allow.fqdns}))


def restricted(policy: Policy, entry: ContainerEntry | None) -> bool:
    if entry is not None and entry.restrict_dns is not None:
        return entry.restrict_dns
    return policy.defaults.restrict_dns


def dns_plan(policy: Policy, governed: Sequence[Speaker], guards: Sequence[Guard]) -> Dns | None:
    """None when no container is a client: then nothing is redirected and no set exists."""
    clients: list[DnsClient] = []
    for item, guard in zip(governed, guards, strict=True):
        if guard.egress is None:
            continue
        names = filter_patterns(guard.egress)
        restrict = restricted(policy, item.entry)
        if not names and not restrict:
            continue
        clients += [DnsClient(e.address, names, restrict) for e in guard.endpoints]
    if not clients:
        return None
    settings = policy.dns
    return Dns(
        port=settings.port,
        min_ttl=settings.min_ttl,
        max_ttl=settings.max_ttl,
        upstreams=settings.upstreams or (),
        clients=tuple(dict.fromkeys(clients)),
    )
