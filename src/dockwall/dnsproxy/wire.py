"""The question of a plain DNS query, read straight from the wire (pure).

Most queries are plain: header with QR clear and opcode QUERY, one question, no answer
or authority records, at most one additional record (EDNS's OPT), nothing after it.
Reading only that costs a few microseconds where dnspython's full parse costs tens;
the forwarder passes such a query on as it came. Anything else (a compression pointer
in the question, a label with bytes other than letters, digits, '-' and '_', an
option dnspython reads strictly, a TSIG) gets None here and goes through dnspython, as
before, so a packet that dnspython would refuse is never forwarded by this path.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

HEADER = struct.Struct("!HHHHHH")
FIXED = struct.Struct("!HH")  # type, class: dnspython takes any
OPT_FIXED = struct.Struct("!HHIH")
OPTION = struct.Struct("!HH")
QR = 0x8000
OPCODE = 0x7800
OPT = 41
MAX_NAME = 255
MAX_LABEL = 63
PLAIN_LABEL = re.compile(rb"[A-Za-z0-9_-]+")
COOKIE = 10
COOKIE_SIZES = frozenset({8, *range(16, 41)})
SIMPLE_OPTIONS = frozenset({COOKIE, 12})  # COOKIE (sizes checked) and PADDING (any bytes)


@dataclass(frozen=True, slots=True)
class Question:
    """The asked name as patterns are stored (lower case, no final dot); bytes 12..end
    of the query are its question section, as the upstream's answer must repeat it."""

    name: str
    end: int


def name_end(data: bytes, start: int) -> tuple[str, int] | None:
    """The lower-cased name at `start` and the offset after it, if it is plain."""
    labels: list[str] = []
    at = start
    while True:
        if at >= len(data):
            return None
        size = data[at]
        if size == 0:
            at += 1
            break
        if size > MAX_LABEL:
            return None  # a compression pointer or a reserved label type
        label = data[at + 1 : at + 1 + size]
        if len(label) != size or not PLAIN_LABEL.fullmatch(label):
            return None
        labels.append(label.decode("ascii").lower())
        at += 1 + size
    if at - start > MAX_NAME:
        return None
    return ".".join(labels), at


def plain_opt(data: bytes, at: int) -> bool:
    """Whether data[at:] is exactly one OPT record dnspython would read as this does."""
    if data[at : at + 1] != b"\x00" or len(data) < at + 1 + OPT_FIXED.size:
        return False
    kind, _, _, size = OPT_FIXED.unpack_from(data, at + 1)
    at += 1 + OPT_FIXED.size
    if kind != OPT or at + size != len(data):
        return False
    while at < len(data):
        if at + OPTION.size > len(data):
            return False
        code, length = OPTION.unpack_from(data, at)
        at += OPTION.size + length
        if at > len(data) or code not in SIMPLE_OPTIONS:
            return False
        if code == COOKIE and length not in COOKIE_SIZES:
            return False
    return True


def plain_query(data: bytes) -> Question | None:
    """The question of a plain query, or None (not plain, or not a query at all)."""
    if len(data) < HEADER.size:
        return None
    _, flags, questions, answers, authority, additional = HEADER.unpack_from(data)
    if flags & (QR | OPCODE) or questions != 1 or answers or authority or additional > 1:
        return None
    found = name_end(data, HEADER.size)
    if found is None:
        return None
    name, at = found
    if at + FIXED.size > len(data):
        return None
    at += FIXED.size
    if additional == 0:
        return Question(name, at) if at == len(data) else None
    return Question(name, at) if plain_opt(data, at) else None
