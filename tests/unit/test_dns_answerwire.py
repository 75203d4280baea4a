"""The forwarder's wire reading of an answer's chain agrees with dnspython's.

Whatever the fast reader accepts, dnspython reads too, to the same chain (name,
addresses in order, lowest TTL); every plain answer dnspython writes (compressed) is
accepted. Answers mix chains, loops, off-chain records and mixed case; mutations
(flipped bytes, cut or extended packets) probe the edges.
"""

from __future__ import annotations

import dns.exception
import dns.message
import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

from dockwall.dnsproxy import answers, answerwire

NAMES = ("api.example.test.", "API.Example.test.", "edge.cdn.test.", "x.test.", "evil.test.")
ADDRESSES = ("192.0.2.1", "192.0.2.2", "203.0.113.9", "2001:db8::1", "2001:db8::2")
RECORD = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from(["A", "AAAA", "CNAME"]),
    st.integers(0, 2**32 - 1),
    st.integers(0, len(ADDRESSES) - 1),
)


def answer(question: str, records: list[tuple[str, str, int, int]], edns: bool) -> bytes:
    query = dns.message.make_query(question, "A", use_edns=0 if edns else False)
    response = dns.message.make_response(query)
    for name, kind, ttl, pick in records:
        if kind == "CNAME":
            value = NAMES[pick]
        elif kind == "A":
            value = ADDRESSES[pick % 3]
        else:
            value = ADDRESSES[3 + pick % 2]
        rrset = dns.rrset.from_text(name, ttl, "IN", kind, value)
        found = response.find_rrset(response.answer, rrset.name, rrset.rdclass, rrset.rdtype,
                                    create=True)  # fmt: skip
        found.update(rrset)
    return bytes(response.to_wire())


def dnspython_chain(data: bytes) -> answers.Learned | str | None:
    try:
        return answers.chain(dns.message.from_wire(data))
    except (dns.exception.DNSException, ValueError):
        return "refused"


def agrees(data: bytes) -> bool:
    """Whether the fast reader took `data`; if it did, dnspython reads the same chain."""
    fast = answerwire.chain(data)
    if isinstance(fast, answerwire.Unread):
        return False
    assert fast == dnspython_chain(data)
    return True


def two_targets(records: list[tuple[str, str, int, int]]) -> bool:
    targets: dict[str, set[int]] = {}
    for name, kind, _, pick in records:
        if kind == "CNAME":
            targets.setdefault(name.lower(), set()).add(pick)
    return any(len(t) > 1 for t in targets.values())


@settings(max_examples=400)
@given(st.sampled_from(NAMES), st.lists(RECORD, max_size=8), st.booleans())
def test_every_plain_answer_is_read_as_dnspython_reads_it(
    question: str, records: list[tuple[str, str, int, int]], edns: bool
) -> None:
    data = answer(question, records, edns)
    assert agrees(data) or two_targets(records)


@settings(max_examples=600)
@given(st.sampled_from(NAMES), st.lists(RECORD, max_size=5), st.booleans(), st.data())
def test_mutated_answers_are_never_read_where_dnspython_differs(
    question: str, records: list[tuple[str, str, int, int]], edns: bool, data: st.DataObject
) -> None:
    packet = bytearray(answer(question, records, edns))
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(packet) - 1))
        packet[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.just(len(packet)), st.integers(0, len(packet))))
    agrees(bytes(packet[:cut]) + data.draw(st.binary(max_size=8)))


def test_an_injected_off_chain_record_is_not_learned() -> None:
    data = answer(
        "api.example.test.",
        [
            ("api.example.test.", "CNAME", 60, 2),  # -> edge.cdn.test.
            ("edge.cdn.test.", "A", 30, 0),
            ("evil.test.", "A", 300, 2),
        ],
        edns=True,
    )
    found = answerwire.chain(data)
    assert isinstance(found, answers.Learned)
    assert [str(a) for a in found.addresses] == ["192.0.2.1"] and found.ttl == 30
    assert found.name == "api.example.test"


def test_authority_records_and_forward_pointers_go_to_dnspython() -> None:
    query = dns.message.make_query("api.example.test.", "A", use_edns=False)
    nodata = dns.message.make_response(query)
    nodata.authority.append(dns.rrset.from_text("example.test.", 60, "IN", "SOA",
                                                "ns. host. 1 2 3 4 5"))  # fmt: skip
    assert answerwire.chain(nodata.to_wire()) is answerwire.UNREAD
    plain = answer("api.example.test.", [("api.example.test.", "A", 60, 0)], edns=False)
    forward = plain[:12] + b"\xc0\x20" + plain[-24:]  # a question name pointing ahead
    assert answerwire.chain(forward) is answerwire.UNREAD
