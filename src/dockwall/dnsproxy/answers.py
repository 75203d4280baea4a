"""What a DNS answer says about the name that was asked, read strictly.

Only records on the CNAME chain from the question count: an A record for any other
owner name in the same answer (injected beside the chain by a hostile or broken
resolver) is never learned. The lifetime is the lowest TTL on the chain, as the chain
is only as fresh as its weakest link.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from dataclasses import dataclass
from typing import NamedTuple

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset

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


class Record(NamedTuple):
    """The records of one owner and type (an RRset), as either reader sees them: its
    lowest TTL, its addresses (A, AAAA) or its CNAME target (a name, compared as the
    reader's names compare: dnspython's case-blind Name, or the lower-cased text)."""

    owner: Hashable
    kind: int
    ttl: int
    addresses: tuple[Address, ...]
    target: Hashable | None


Records = list[Record]
ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


def follow(start: Hashable, asked: str, records: Records) -> Learned | None:
    """The A/AAAA records at the end of (or along) the CNAME chain from `start`."""
    current = start
    ttls: list[int] = []
    found: list[Address] = []
    seen: set[Hashable] = set()
    for _ in range(MAX_CHAIN):
        if current in seen:
            break
        seen.add(current)
        target = None
        for record in records:
            if record.owner != current:
                continue
            if record.kind in ADDRESS_TYPES:
                ttls.append(record.ttl)
                found += record.addresses
            elif record.kind == dns.rdatatype.CNAME:
                ttls.append(record.ttl)
                target = record.target
        if target is None:
            break
        current = target
    if not found:
        return None
    return Learned(asked, tuple(dict.fromkeys(found)), min(ttls))


def record(rrset: dns.rrset.RRset) -> Record:
    if rrset.rdtype == dns.rdatatype.CNAME:
        return Record(rrset.name, rrset.rdtype, rrset.ttl, (), rrset[0].target)
    addresses = tuple(ipaddress.ip_address(r.address) for r in rrset)
    return Record(rrset.name, rrset.rdtype, rrset.ttl, addresses, None)


def chain(response: dns.message.Message) -> Learned | None:
    """The chain of an answer dnspython read (class IN records only)."""
    if len(response.question) != 1:
        return None
    start = response.question[0].name
    kinds = (*ADDRESS_TYPES, dns.rdatatype.CNAME)
    records = [
        record(r) for r in response.answer if r.rdclass == dns.rdataclass.IN and r.rdtype in kinds
    ]
    return follow(start, normal_name(start.to_text()), records)
