"""The CNAME chain of a plain answer, read straight from the wire (pure).

A learned answer waits for its set update, and dnspython's full parse of it cost more
than the update itself (0.1-0.5 ms against tens of microseconds here). A plain answer:
a response to a QUERY with one question, an answer section of only A, AAAA and CNAME
records of class IN, no authority records, at most one additional record (EDNS's OPT,
read as `wire.plain_opt` reads it), nothing after it; names of plain labels (letters,
digits, '-', '_'), compressed as dnspython allows (pointers strictly backwards, never
into the name being read, at most 16 hops), and one CNAME target per owner. Anything
else gets UNREAD and goes through dnspython as before, so an answer dnspython would
refuse (SERVFAIL) is never held by this path, and what both read is the same chain:
`answers.follow` walks the records of either (a hypothesis test compares them).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from dockwall.dnsproxy import wire
from dockwall.dnsproxy.answers import Learned, Record, Records, follow
from dockwall.model.state import Address

RR = struct.Struct("!HHIH")
QR = 0x8000
A, CNAME, AAAA = 1, 5, 28
IN = 1
SIZES = {A: 4, AAAA: 16}
MAX_HOPS = 16
MAX_TTL = 0x7FFFFFFF  # dnspython reads a larger TTL as 0


@dataclass(frozen=True)
class Unread:
    """Not a plain answer: read it with dnspython."""


UNREAD = Unread()


class NotPlain(Exception):
    """Raised inside the reader; the caller gets UNREAD."""


def name_at(data: bytes, at: int, end: int) -> tuple[str, int]:
    """The lower-cased name at `at` (no byte of it at or past `end`) and the offset after
    it in place; pointers followed as dnspython follows them."""
    labels: list[str] = []
    after = -1
    biggest = start = at
    hops = size = 0
    while True:
        if at >= end:
            raise NotPlain
        count = data[at]
        if count == 0:
            at += 1
            break
        if count >= 0xC0:
            if at + 2 > end:
                raise NotPlain
            target = (count & 0x3F) << 8 | data[at + 1]
            if target >= biggest or hops == MAX_HOPS:
                raise NotPlain
            if after < 0:
                after = at + 2
            biggest, hops, end, at = target, hops + 1, start, target
            start = target
            continue
        if count > wire.MAX_LABEL or at + 1 + count > end:
            raise NotPlain
        label = data[at + 1 : at + 1 + count]
        if not wire.PLAIN_LABEL.fullmatch(label):
            raise NotPlain
        labels.append(label.decode("ascii").lower())
        size += 1 + count
        at += 1 + count
    if size + 1 > wire.MAX_NAME:
        raise NotPlain
    return ".".join(labels), at if after < 0 else after


def records(data: bytes, at: int, count: int) -> tuple[Records, int]:
    """The answer section grouped as dnspython groups it: one (owner, type) entry per
    pair, in order of first appearance, its lowest TTL, its values without repeats."""
    groups: dict[tuple[str, int], tuple[int, list[Address | str]]] = {}
    for _ in range(count):
        owner, at = name_at(data, at, len(data))
        if at + RR.size > len(data):
            raise NotPlain
        kind, klass, ttl, length = RR.unpack_from(data, at)
        at += RR.size
        end = at + length
        if klass != IN or end > len(data):
            raise NotPlain
        value: Address | str
        if kind == CNAME:
            value, stop = name_at(data, at, end)
            if stop != end:
                raise NotPlain
        elif SIZES.get(kind) == length:
            value = ipaddress.ip_address(data[at:end])
        else:
            raise NotPlain
        at = end
        ttl = 0 if ttl > MAX_TTL else ttl
        known = groups.get((owner, kind))
        if known is None:
            groups[(owner, kind)] = (ttl, [value])
            continue
        values = known[1]
        if kind == CNAME and value not in values:
            raise NotPlain  # two targets: which one dnspython follows is its business
        if value not in values:
            values.append(value)
        groups[(owner, kind)] = (min(known[0], ttl), values)
    return [record(owner, kind, ttl, values) for (owner, kind), (ttl, values) in groups.items()], at


def record(owner: str, kind: int, ttl: int, values: list[Address | str]) -> Record:
    if kind == CNAME:
        return Record(owner, kind, ttl, (), values[0])
    return Record(owner, kind, ttl, tuple(v for v in values if not isinstance(v, str)), None)


def read(data: bytes) -> Learned | None:
    if len(data) < wire.HEADER.size:
        raise NotPlain
    _, flags, questions, answers, authority, additional = wire.HEADER.unpack_from(data)
    if not flags & QR or flags & wire.OPCODE or questions != 1 or authority or additional > 1:
        raise NotPlain
    asked, at = name_at(data, wire.HEADER.size, len(data))
    at += wire.FIXED.size
    if at > len(data):
        raise NotPlain
    found, at = records(data, at, answers)
    ends = at == len(data) if additional == 0 else wire.plain_opt(data, at)
    if not ends:
        raise NotPlain
    return follow(asked, asked, found)


def chain(data: bytes) -> Learned | Unread | None:
    """What `answers.chain(dns.message.from_wire(data))` gives, or UNREAD."""
    try:
        return read(data)
    except NotPlain:
        return UNREAD
