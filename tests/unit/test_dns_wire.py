"""The forwarder's wire reading of a query agrees with dnspython's full parse.

Whatever the fast reader accepts, dnspython reads too, with the same question name, as
a query; every plain query dnspython makes is accepted. Random bytes and mutated
queries (flipped bytes, cut or extended packets) probe the edges.
"""

from __future__ import annotations

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
from hypothesis import given, settings
from hypothesis import strategies as st

from dockwall.dnsproxy.wire import plain_query
from dockwall.policy.fqdn import normal_name

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_", min_size=1,
                max_size=20)  # fmt: skip
NAMES = st.lists(LABEL, min_size=0, max_size=6).map(lambda labels: ".".join(labels) + ".")
KINDS = st.sampled_from(["A", "AAAA", "CNAME", "TXT", "ANY", "MX"])


def encoded(name: str, kind: str, edns: bool, cookie: bool) -> bytes:
    if not edns:
        return dns.message.make_query(name, kind, use_edns=False).to_wire()
    options = [dns.edns.GenericOption(dns.edns.COOKIE, b"12345678")] if cookie else None
    return dns.message.make_query(name, kind, use_edns=0, options=options).to_wire()


def dnspython_question(data: bytes) -> str | None:
    """The normalised question name, if dnspython reads `data` as a one-question query."""
    try:
        message = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError):
        return None
    if message.flags & dns.flags.QR or len(message.question) != 1:
        return None
    if message.opcode() != dns.opcode.QUERY:
        return None
    return normal_name(message.question[0].name.to_text())


def agrees(data: bytes) -> None:
    fast = plain_query(data)
    if fast is not None:
        assert dnspython_question(data) == fast.name
        assert fast.end <= len(data)


@given(NAMES, KINDS, st.booleans(), st.booleans())
def test_every_plain_query_is_read_as_dnspython_reads_it(
    name: str, kind: str, edns: bool, cookie: bool
) -> None:
    data = encoded(name, kind, edns or cookie, cookie)
    fast = plain_query(data)
    assert fast is not None
    assert fast.name == normal_name(dns.name.from_text(name).to_text())
    agrees(data)


@settings(max_examples=500)
@given(NAMES, KINDS, st.booleans(), st.booleans(), st.data())
def test_mutated_queries_are_never_read_where_dnspython_fails(
    name: str, kind: str, edns: bool, cookie: bool, data: st.DataObject
) -> None:
    packet = bytearray(encoded(name, kind, edns or cookie, cookie))
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(packet) - 1))
        packet[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.just(len(packet)), st.integers(0, len(packet))))
    tail = data.draw(st.binary(max_size=8))
    agrees(bytes(packet[:cut]) + tail)


@settings(max_examples=500)
@given(st.binary(max_size=80))
def test_random_bytes_are_never_read_where_dnspython_fails(packet: bytes) -> None:
    agrees(packet)


def test_answers_and_compression_go_to_dnspython() -> None:
    query = dns.message.make_query("api.example.test", "A")
    response = dns.message.make_response(query)
    assert plain_query(response.to_wire()) is None
    pointer = query.to_wire()[:12] + b"\xc0\x0c\x00\x01\x00\x01"
    assert plain_query(pointer) is None
    assert plain_query(encoded("Api.Example.test.", "A", False, False)) is not None
    assert plain_query(encoded("api.example.test.", "A", False, False) + b"\x00") is None
