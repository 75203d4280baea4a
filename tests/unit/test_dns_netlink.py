"""The netlink set writer's messages and acks, byte for byte (pure: no socket).

The expected layouts are those of linux/netlink.h and linux/netfilter/nf_tables.h:
nlattr = u16 length, u16 type (host order), payload padded to 4; NLA_F_NESTED = 0x8000.
"""

from __future__ import annotations

import errno
import struct

import pytest

from dockwall.dnsproxy import ipsetnetlink as ipset
from dockwall.dnsproxy import netlink as nl
from dockwall.dnsproxy import nftnetlink as nft
from dockwall.dnsproxy.netlink import SetElement

Attrs = list[tuple[int, bytes]]


def header(length: int, kind: int) -> bytes:
    return struct.pack("=HH", length, kind)


def attributes(data: bytes) -> Attrs:
    """(type, payload) of each attribute, walked as the kernel walks them."""
    found: Attrs = []
    at = 0
    while at < len(data):
        length, kind = struct.unpack_from("=HH", data, at)
        assert length >= 4 and at + length <= len(data)
        found.append((kind, data[at + 4 : at + length]))
        at += (length + 3) & ~3
    assert at == len(data)
    return found


def test_an_element_is_its_key_and_its_timeout_in_milliseconds() -> None:
    value = header(8, 1) + bytes([192, 0, 2, 5])  # NFTA_DATA_VALUE
    key = header(12, 1 | 0x8000) + value  # NFTA_SET_ELEM_KEY, nested
    timeout = header(12, 4) + (300_000).to_bytes(8, "big")  # NFTA_SET_ELEM_TIMEOUT, be64 ms
    assert nft.element("192.0.2.5", 300) == header(28, 1 | 0x8000) + key + timeout


def test_an_ipv6_key_is_sixteen_bytes_and_a_delete_has_no_timeout() -> None:
    value = header(20, 1) + bytes.fromhex("20010db8000000000000000000000007")
    assert nft.element("2001:db8::7", None) == header(28, 0x8001) + header(24, 0x8001) + value


def test_a_string_attribute_ends_in_nul_and_is_padded() -> None:
    assert nl.text(2, "fq-x") == header(9, 2) + b"fq-x\0" + b"\0\0\0"


def parsed(data: bytes) -> tuple[tuple[int, int, int, int, int], tuple[int, int, int], Attrs]:
    length, kind, flags, seq, port = struct.unpack_from("=IHHII", data)
    assert length == len(data)
    family, version, res_id = struct.unpack_from("!BBH", data, 16)
    return (length, kind, flags, seq, port), (family, version, res_id), attributes(data[20:])


def test_an_answer_is_add_delete_add_per_set_in_one_batch() -> None:
    items = [
        SetElement("fq-a-v4", "192.0.2.5", 30),
        SetElement("fq-a-v6", "2001:db8::5", 60),
        SetElement("fq-a-v4", "192.0.2.5", 90),  # the same key twice: once, the longer
    ]
    requests = nft.requests("dockwall", items, 7)
    assert [r.seq for r in requests] == list(range(7, 13))
    assert requests[1].what == "delete 1 element(s) of set inet dockwall fq-a-v4"
    kinds = []
    for request in requests:
        (_, kind, flags, seq, _), genmsg, attrs = parsed(request.data)
        assert seq == request.seq and genmsg == (1, 0, 0)  # NFPROTO_INET, v0
        kinds.append((kind, flags))
        assert attrs[:2] == [(1, b"dockwall\0"), (2, request.what.split()[-1].encode() + b"\0")]
        (elements_kind, elements), *_ = attrs[2:]
        assert elements_kind == 3 | 0x8000  # NFTA_SET_ELEM_LIST_ELEMENTS
        (listed,) = attributes(elements)
        inner = dict(attributes(listed[1]))
        if kind == 0x0A0E:
            assert 4 not in inner  # a delete names the key only
        else:
            expected = 90_000 if b"fq-a-v4" in request.data else 60_000
            assert inner[4] == expected.to_bytes(8, "big")
    new = (0x0A0C, 0x01 | 0x400)  # NFT_MSG_NEWSETELEM: request, create
    delete = (0x0A0E, 0x01)
    acked = (0x0A0C, 0x01 | 0x400 | 0x04)  # the last asks for the batch's one ack
    assert kinds == [new, delete, new, new, delete, acked]


def test_the_batch_brackets_the_requests_for_the_nftables_subsystem() -> None:
    requests = nft.requests("dockwall", [SetElement("fq-a-v4", "192.0.2.5", 30)], 2)
    data = nl.batch(10, 1, requests, 5)
    begin, end = data[:20], data[-20:]
    assert parsed(begin)[0][1:4] == (0x10, 0x01, 1) and parsed(begin)[1] == (0, 0, 10)
    assert parsed(end)[0][1:4] == (0x11, 0x01, 5) and parsed(end)[1] == (0, 0, 10)
    assert data[20:-20] == b"".join(r.data for r in requests)


def reply(seq: int, code: int) -> bytes:
    """An NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK: error, request header."""
    body = struct.pack("=i", code) + struct.pack("=IHHII", 20, 0x0A0C, 5, seq, 0)
    return struct.pack("=IHHII", 16 + len(body), 2, 0x100, seq, 0) + body


def test_the_last_ack_without_an_error_is_success() -> None:
    requests = nft.requests("dockwall", [SetElement("fq-a-v4", "192.0.2.5", 30)], 2)
    nl.check(nl.errors_of(reply(4, 0)), requests, 1)


def test_a_missing_set_fails_naming_it_and_enoent() -> None:
    requests = nft.requests("dockwall", [SetElement("fq-gone-v4", "192.0.2.5", 30)], 2)
    replies = nl.errors_of(reply(2, -errno.ENOENT) + reply(3, -errno.ENOENT) + reply(4, 0))
    with pytest.raises(
        nl.NetlinkError, match=r"add 1 element\(s\) of set inet dockwall fq-gone-v4.*ENOENT"
    ) as raised:
        nl.check(replies, requests, 1)
    assert raised.value.code == errno.ENOENT


def test_a_failed_commit_is_reported_on_the_begin_message() -> None:
    requests = nft.requests("dockwall", [SetElement("fq-a-v4", "192.0.2.5", 30)], 2)
    replies = nl.errors_of(reply(1, -errno.ENOMEM) + reply(4, 0))
    with pytest.raises(nl.NetlinkError, match=r"commit.*ENOMEM"):
        nl.check(replies, requests, 1)


def test_an_ack_that_never_came_is_a_failure() -> None:
    requests = nft.requests("dockwall", [SetElement("fq-a-v4", "192.0.2.5", 30)], 2)
    with pytest.raises(nl.NetlinkError, match="no ack"):
        nl.check(nl.errors_of(reply(3, 0)), requests, 1)


def test_an_error_is_not_overwritten_by_a_later_ack_of_the_same_seq() -> None:
    assert nl.errors_of(reply(2, -errno.EPERM) + reply(2, 0)) == {2: -errno.EPERM}


def test_a_truncated_reply_is_ignored_not_misread() -> None:
    assert nl.errors_of(reply(2, 0)[:-4]) == {}


def test_an_ipset_add_is_protocol_name_and_data_with_ip_and_timeout_in_network_order() -> None:
    (request,) = ipset.requests([SetElement("dwfq-x-4", "192.0.2.5", 300)], 3)
    (_, kind, flags, seq, _), genmsg, attrs = parsed(request.data)
    assert (kind, flags, seq) == (0x0609, 0x01 | 0x04, 3)  # IPSET_CMD_ADD; no EXCL: -exist
    assert genmsg == (2, 0, 0)  # NFPROTO_IPV4
    assert attrs[:2] == [(1, b"\x07"), (2, b"dwfq-x-4\0")]  # IPSET_PROTOCOL 7, the set
    (data_kind, data), *rest = attrs[2:]
    assert data_kind == 7 | 0x8000 and rest == []
    (ip_kind, ip), timeout = attributes(data)
    assert ip_kind == 1 | 0x8000 and attributes(ip) == [(1 | 0x4000, bytes([192, 0, 2, 5]))]
    assert timeout == (6 | 0x4000, (300).to_bytes(4, "big"))


def test_ipset_adds_go_one_message_per_address_and_only_the_last_asks_for_an_ack() -> None:
    items = [SetElement("dwfq-x-6", "2001:db8::7", 60), SetElement("dwfq-x-4", "192.0.2.5", 5)]
    first, last = ipset.requests(items, 10)
    (_, _, flags, _, _), genmsg, attrs = parsed(first.data)
    assert flags == 0x01 and genmsg == (10, 0, 0)  # NFPROTO_IPV6
    (_, ip), _ = attributes(attrs[2][1])
    assert attributes(ip) == [(2 | 0x4000, bytes.fromhex("20010db8000000000000000000000007"))]
    assert parsed(last.data)[0][2] == 0x01 | 0x04


def test_ipset_errors_of_its_own_are_named() -> None:
    requests = ipset.requests([SetElement("dwfq-x-4", "192.0.2.5", 5)], 2)
    with pytest.raises(nl.NetlinkError, match=r"add 192.0.2.5 to ipset dwfq-x-4: set is full"):
        nl.check(nl.errors_of(reply(2, -4352)), requests, 1, ipset.IPSET_ERRORS)


def newgen(seq: int, genid: int) -> bytes:
    """The kernel's NFT_MSG_NEWGEN reply: NFTA_GEN_ID (be32), then the process's pid."""
    body = nl.attr(nft.NFTA_GEN_ID, struct.pack("!I", genid)) + nl.attr(2, struct.pack("!I", 7))
    return nl.message(10 << 8 | 15, 0, seq, nl.AF_UNSPEC, 0, body)


def test_the_generation_reply_of_our_request_is_found_and_its_id_read() -> None:
    data = nl.message(nl.NLMSG_ERROR, 0, 3, 0, 0, b"") + newgen(4, 0xFFFFFFFE)
    payload = nl.reply_payload(data, 4)
    assert nl.attributes(payload)[nft.NFTA_GEN_ID] == struct.pack("!I", 0xFFFFFFFE)


def test_a_generation_request_refused_or_unanswered_raises() -> None:
    refused = nl.message(nl.NLMSG_ERROR, 0, 5, 0, 0, b"")
    refused = refused[: nl.HEADER.size] + struct.pack("=i", -errno.EPERM)
    refused = struct.pack("=I", len(refused)) + refused[4:]
    with pytest.raises(nl.NetlinkError, match="EPERM"):
        nl.reply_payload(refused, 5)
    with pytest.raises(nl.NetlinkError, match="no reply"):
        nl.reply_payload(newgen(4, 1), 5)
