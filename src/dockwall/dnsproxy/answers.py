"""What a DNS answer says about the name that was asked, read strictly.

Only records on the CNAME chain from the question count: an A record for any other
owner name in the same answer (injected beside the chain by a hostile or broken
resolver) is never learned. The lifetime is the lowest TTL on the chain, as the chain
is only as fresh as its weakest link.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rdatatype

from dockwall.model.state import Address
from dockwall.policy.fqdn import matches, normal_name

MAX_CHAIN = 16


@dataclass(frozen=True)
class Learned:
    """The addresses an answer gives for its question, and the lowest TTL on the way."""

    name: str
    addresses: tuple[Address, ...]
    ttl: int


def question_name(message: dns.message.Message) -> str | None:
    if len(message.question) != 1:
        return None
    return normal_name(message.question[0].name.to_text())


def wanted_patterns(patterns: tuple[str, ...], name: str) -> tuple[str, ...]:
    return tuple(p for p in patterns if matches(p, name))


def chain(response: dns.message.Message) -> Learned | None:
    """The A/AAAA records at the end of (or along) the CNAME chain from the question."""
    if len(response.question) != 1:
        return None
    current = response.question[0].name
    asked = normal_name(current.to_text())
    ttls: list[int] = []
    found: list[Address] = []
    seen: set[dns.name.Name] = set()
    for _ in range(MAX_CHAIN):
        if current in seen:
            break
        seen.add(current)
        target = None
        for rrset in response.answer:
            if rrset.name != current:
                continue
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                ttls.append(rrset.ttl)
                found += [ipaddress.ip_address(r.address) for r in rrset]
            elif rrset.rdtype == dns.rdatatype.CNAME:
                ttls.append(rrset.ttl)
                target = rrset[0].target
        if target is None:
            break
        current = target
    if not found:
        return None
    return Learned(asked, tuple(dict.fromkeys(found)), min(ttls))
