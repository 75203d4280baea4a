"""The observe parts that need no kernel: NFLOG message parsing and loss detection, packet
headers, the address history, the journal, `logs` filtering, and the picture's escaping."""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from pathlib import Path

import pytest

from dockwall.compile.compiler import compile_policy
from dockwall.model.state import Attachment, Container
from dockwall.observe.graph import build, dot, svg
from dockwall.observe.history import AddressHistory
from dockwall.observe.journal import Journal, follow, read_all
from dockwall.observe.logview import Selection, columns, parse_since
from dockwall.observe.nflog import (
    ATTR_PAYLOAD,
    ATTR_PREFIX,
    ATTR_SEQ,
    NFGEN,
    Lost,
    NflogReader,
    Record,
    attribute,
    messages,
    parse_packet,
)
from dockwall.observe.packet import headers
from dockwall.policy import parse_policy

from .state_samples import STATE


def ipv4_syn(src: str, dst: str, sport: int, dport: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))  # fmt: skip
    return ip + struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 2, 1000, 0, 0)


def ipv6_udp(src: str, dst: str, sport: int, dport: int) -> bytes:
    head = struct.pack("!IHBB", 6 << 28, 8, 17, 64)
    addresses = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
    return head + addresses + struct.pack("!HHHH", sport, dport, 8, 0)


def packet_body(prefix: str, payload: bytes, seq: int) -> bytes:
    return (
        NFGEN.pack(socket.AF_INET, 0, 0)
        + attribute(ATTR_PREFIX, prefix.encode() + b"\0")
        + attribute(ATTR_PAYLOAD, payload)
        + attribute(ATTR_SEQ, struct.pack("!I", seq))
    )


def test_packet_attributes_are_read() -> None:
    record = parse_packet(
        packet_body("dw:i:p4", ipv4_syn("198.51.100.7", "172.17.0.2", 4000, 80), 7), 1.5
    )
    assert (record.prefix, record.seq, record.time) == ("dw:i:p4", 7, 1.5)
    found = headers(record.payload)
    assert found is not None
    assert (str(found.source), found.destination_port, found.proto) == ("198.51.100.7", 80, "tcp")
    six = headers(ipv6_udp("2001:db8:200::7", "2001:db8:d0c::2", 5353, 53))
    assert six is not None and (str(six.destination), six.destination_port) == (
        "2001:db8:d0c::2",
        53,
    )
    assert headers(b"\x45") is None and headers(b"") is None


def test_one_datagram_holds_many_messages() -> None:
    body = packet_body("dw:e:d", ipv4_syn("172.17.0.2", "203.0.113.10", 1, 2), 1)
    one = struct.pack("=IHHII", 16 + len(body), 4 << 8, 0, 0, 0) + body
    assert [kind for kind, _ in messages(one + one)] == [4 << 8, 4 << 8]


def test_sequence_gaps_are_reported_as_lost() -> None:
    reader = NflogReader.__new__(NflogReader)
    reader.expected = None
    found = []
    for seq in (5, 6, 9, 10):
        found += reader.checked(Record("dw:i:d", b"", 0, seq, float(seq)))
    lost = [item for item in found if isinstance(item, Lost)]
    assert [item.count for item in lost] == [2]
    assert len([item for item in found if isinstance(item, Record)]) == 4


def holder(name: str, cid: str, address: str) -> Container:
    ip = ipaddress.ip_address(address)
    return Container(cid * 12, name, attachments=(Attachment("shop", "br-x", (ip,)),))


def test_history_names_the_holder_at_the_time(tmp_path: Path) -> None:
    history = AddressHistory(tmp_path / "addresses.json")
    history.update([holder("db", "a", "172.30.0.50")], now=100.0)
    history.update([holder("other", "b", "172.30.0.50"), holder("db", "c", "172.30.0.51")], 200.0)
    old = ipaddress.ip_address("172.30.0.50")
    assert (h := history.at(old, 150.0)) is not None and h.name == "db"
    assert (h := history.at(old, 250.0)) is not None and h.name == "other"
    assert (h := history.at(old, 98.0)) is not None and h.name == "db", "just before it was seen"
    assert history.at(old, 10.0) is None
    again = AddressHistory(tmp_path / "addresses.json")
    assert (h := again.at(old, 150.0)) is not None and h.name == "db", "kept across restarts"


def test_journal_rotates_by_size_and_reads_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "drops.jsonl", max_bytes=200)
    for index in range(30):
        journal.write([{"kind": "drop", "n": index, "ts": index}])
    journal.close()
    found = [e["n"] for e in read_all(tmp_path / "drops.jsonl")]
    assert found == sorted(found) and found[-1] == 29
    assert (tmp_path / "drops.jsonl.1").stat().st_size < 400
    assert len(found) < 30, "the oldest lines went with the rotation"


def test_journal_makes_its_file_at_the_first_write_only(tmp_path: Path) -> None:
    path = tmp_path / "run" / "drops.jsonl"
    journal = Journal(path)
    journal.write([])
    assert not path.parent.exists(), "nothing to log yet: no directory, no file"
    journal.write([{"kind": "drop", "n": 1, "ts": 1}])
    journal.close()
    assert [e["n"] for e in read_all(path)] == [1]


def test_follow_reads_a_journal_made_after_it_started_from_its_first_line(
    tmp_path: Path,
) -> None:
    """`logs -f` started before the agent's first drop must not miss that drop."""
    path = tmp_path / "drops.jsonl"
    journal = Journal(path)
    writer = threading.Timer(0.3, journal.write, [[{"kind": "drop", "n": 1, "ts": 1}]])
    writer.start()
    try:
        first = next(follow(path, poll=0.02))
    finally:
        writer.join(timeout=10)
        journal.close()
    assert first["n"] == 1


def test_logs_selection_and_columns() -> None:
    drop = {"kind": "drop", "ts": 100.0, "time": "2026-01-01T00:00:00.000+00:00",
            "direction": "egress", "container": "web", "remote": "2001:db8::1", "port": 443,
            "proto": "tcp", "policy": "policy.yaml:4"}  # fmt: skip
    lost = {"kind": "lost", "ts": 101.0, "count": None}
    assert Selection(container="web").wants(drop) and not Selection(container="db").wants(drop)
    assert Selection(container="db").wants(lost), "loss is shown whatever the filter"
    assert not Selection(direction="ingress").wants(drop)
    assert not Selection(since=100.5).wants(drop)
    assert columns(drop)[3] == "[2001:db8::1]:443/tcp"
    assert "unknown number" in columns(lost)[4]
    assert parse_since("10m", 1000.0) == 400.0
    assert parse_since("2026-01-01T00:00:00+00:00", 0) == 1767225600.0
    with pytest.raises(ValueError, match="time zone"):
        parse_since("2026-01-01T00:00:00", 0)
    with pytest.raises(ValueError, match="span like 10m"):
        parse_since("ten minutes", 0)


def test_the_picture_escapes_names_and_labels() -> None:
    hostile = '<script>alert("x")</script>'
    policy = parse_policy("version: 1\ndefaults: {ingress: deny}\n", "p")
    state = STATE.__class__(
        STATE.bridges, (*STATE.containers, holder(hostile, "e", "172.30.0.9")), None
    )
    picture = build(compile_policy(policy, state).ruleset, state)
    text = svg(picture)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert '\\"x\\"' in dot(picture), "quotes escaped in DOT"
