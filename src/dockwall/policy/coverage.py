"""Whether one part of a policy already allows everything another part allows.

The lists of a policy only ever allow (what they do not name is dropped), so a rule, an
address or a port inside a wider one of the same list adds nothing. These are the set
relations behind those warnings, in the meaning the compiler gives each rule: a rule
with no ports covers every port, host ports and container ports are matched apart, and
rules naming containers only count when peers are isolated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from dockwall.policy.fields import Network
from dockwall.policy.rules import ContainerSelector, EgressRule, IngressRule, PortRange

__all__ = [
    "LOOPBACK",
    "allows_anything",
    "networks_of",
    "peer_selectors",
    "port_within",
    "rule_covers",
    "within",
]

Rule = IngressRule | EgressRule

LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
EVERYWHERE: tuple[Network, ...] = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def within(narrow: Network, wide: Network) -> bool:
    """Whether every address of `narrow` is in `wide` (never across families)."""
    return (
        narrow.version == wide.version
        and int(wide.network_address) <= int(narrow.network_address)
        and int(narrow.broadcast_address) <= int(wide.broadcast_address)
    )


def networks_cover(wide: Sequence[Network] | None, narrow: Sequence[Network] | None) -> bool:
    """None is any address; a list holding both families' /0 is any address too."""
    if wide is None or all(any(within(e, w) for w in wide) for e in EVERYWHERE):
        return True
    if narrow is None:
        return False
    return all(any(within(n, w) for w in wide) for n in narrow)


def port_within(narrow: PortRange, wide: PortRange) -> bool:
    """Whether `wide` matches every packet `narrow` does (icmp has no ports)."""
    if narrow.proto != wide.proto:
        return False
    if wide.first is None or wide.last is None:
        return True
    if narrow.first is None or narrow.last is None:
        return False
    return wide.first <= narrow.first and narrow.last <= wide.last


def ports_cover(wide: Sequence[PortRange], narrow: Sequence[PortRange]) -> bool:
    return all(any(port_within(n, w) for w in wide) for n in narrow)


def networks_of(rule: Rule) -> tuple[Network, ...] | None:
    """The addresses the rule admits: None for any, () when it names containers only."""
    return rule.cidr_sources if isinstance(rule, IngressRule) else rule.cidr_destinations


def peer_selectors(rule: Rule) -> tuple[ContainerSelector, ...]:
    return rule.from_containers if isinstance(rule, IngressRule) else rule.to_containers


def port_kinds(rule: Rule) -> Mapping[str, tuple[PortRange, ...]]:
    """Ports by how they are matched: host and container ports of ingress are distinct."""
    if isinstance(rule, IngressRule):
        return {"host": rule.host_ports, "container": rule.container_ports}
    return {"any": rule.ports}


def peer_ports(rule: Rule) -> tuple[PortRange, ...]:
    """Between peers there is no publishing: every port named is the receiver's own."""
    if isinstance(rule, IngressRule):
        return rule.host_ports + rule.container_ports
    return rule.ports


def kinds_cover(
    wide: Mapping[str, tuple[PortRange, ...]], narrow: Mapping[str, tuple[PortRange, ...]]
) -> bool:
    if not any(wide.values()):
        return True
    if not any(narrow.values()):
        return False
    return all(not ports or ports_cover(wide[kind], ports) for kind, ports in narrow.items())


def allows_anything(rule: Rule, peers_isolated: bool) -> bool:
    """A rule naming only containers allows nothing unless peers are isolated; one naming
    domains (`to_fqdn`) allows what their answers hold; one naming a list allows what the
    list holds."""
    if rule.named_lists or getattr(rule, "fqdns", ()):
        return True
    return networks_of(rule) != () or (peers_isolated and bool(peer_selectors(rule)))


def names_covered(wide: Rule, narrow: Rule) -> bool:
    """Domains are covered by every address, or by the same patterns."""
    names = set(getattr(narrow, "fqdns", ()))
    if not names:
        return True
    return networks_of(wide) is None or names <= set(getattr(wide, "fqdns", ()))


def addresses_covered(wide: Rule, narrow: Rule) -> bool:
    if not names_covered(wide, narrow):
        return False
    narrow_networks = networks_of(narrow)
    if narrow_networks == ():
        return True
    wide_networks = networks_of(wide)
    if wide_networks == () or not networks_cover(wide_networks, narrow_networks):
        return False
    return kinds_cover(port_kinds(wide), port_kinds(narrow))


def peers_covered(wide: Rule, narrow: Rule, peers_isolated: bool) -> bool:
    if not peers_isolated or not peer_selectors(narrow):
        return True
    if not set(peer_selectors(narrow)) <= set(peer_selectors(wide)):
        return False
    wide_ports, narrow_ports = peer_ports(wide), peer_ports(narrow)
    return not wide_ports or (bool(narrow_ports) and ports_cover(wide_ports, narrow_ports))


def rule_covers(wide: Rule, narrow: Rule, peers_isolated: bool) -> bool:
    """A rule with lists or except covers and is covered by nothing here: what a list
    holds is known only once its file is read, so `check` never guesses about it."""
    if wide.named_lists or narrow.named_lists or wide.excepts or narrow.excepts:
        return False
    return _rule_covers(wide, narrow, peers_isolated)


def _rule_covers(wide: Rule, narrow: Rule, peers_isolated: bool) -> bool:
    """Whether `wide` already allows every connection `narrow` allows."""
    return addresses_covered(wide, narrow) and peers_covered(wide, narrow, peers_isolated)
