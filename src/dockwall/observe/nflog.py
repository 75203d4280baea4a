"""A small nfnetlink_log reader: the kernel's NFLOG records over a netlink socket.

No maintained Python library for nfnetlink_log installs cleanly without C bindings
(libnetfilter_log), and the protocol is small: bind a group, ask for a copy of each
packet's first bytes and per-instance sequence numbers, then parse attribute lists.
The socket belongs to the network namespace of the process that opens it, which is the
namespace whose firewall logs to the group.

Loss is never silent: a sequence number that skips counts the skipped records as lost,
and ENOBUFS (the socket buffer overflowed, the kernel dropped records and cannot say
how many) is reported as an overrun.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 1
NLM_F_ACK = 4
CFG_CMD, CFG_MODE, CFG_TIMEOUT, CFG_QTHRESH, CFG_NLBUFSIZ, CFG_FLAGS = 1, 2, 3, 4, 5, 6
CMD_BIND, CMD_UNBIND = 1, 2
COPY_PACKET = 2
FLAG_SEQ = 1
ATTR_PACKET_HDR, ATTR_TIMESTAMP, ATTR_INDEV, ATTR_OUTDEV = 1, 3, 4, 5
ATTR_PAYLOAD, ATTR_PREFIX, ATTR_SEQ = 9, 10, 12
ATTR_TYPE_MASK = 0x3FFF
HEADER = struct.Struct("=IHHII")
NFGEN = struct.Struct("=BBH")
RECEIVE_BUFFER = 4 << 20


class NflogError(OSError):
    """The group could not be bound (taken by another listener, no permission, ...)."""


@dataclass(frozen=True)
class Record:
    """One logged packet: its prefix, the first bytes of its network header on."""

    prefix: str
    payload: bytes
    hw_protocol: int
    seq: int | None
    time: float
    indev: int | None = None
    outdev: int | None = None


@dataclass(frozen=True)
class Lost:
    """Records the kernel logged that never reached us: `count` None when unknown
    (ENOBUFS: the buffer overflowed)."""

    count: int | None
    time: float


def attributes(data: bytes, offset: int) -> dict[int, bytes]:
    """Netlink attributes from `offset` on, by type (flags masked off)."""
    found: dict[int, bytes] = {}
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        found[kind & ATTR_TYPE_MASK] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def attribute(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    padding = b"\0" * (((length + 3) & ~3) - length)
    return struct.pack("=HH", length, kind) + value + padding


def config_message(group: int, seq: int, *attrs: bytes, family: int = 0) -> bytes:
    body = NFGEN.pack(family, 0, socket.htons(group)) + b"".join(attrs)
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def parse_packet(body: bytes, received: float) -> Record:
    attrs = attributes(body, NFGEN.size)
    hw_protocol = 0
    if ATTR_PACKET_HDR in attrs:
        hw_protocol = struct.unpack_from("!H", attrs[ATTR_PACKET_HDR])[0]
    stamp = received
    if ATTR_TIMESTAMP in attrs and len(attrs[ATTR_TIMESTAMP]) >= 16:
        seconds, micros = struct.unpack_from("!QQ", attrs[ATTR_TIMESTAMP])
        stamp = seconds + micros / 1e6
    seq = struct.unpack_from("!I", attrs[ATTR_SEQ])[0] if ATTR_SEQ in attrs else None
    return Record(
        prefix=attrs.get(ATTR_PREFIX, b"").split(b"\0", 1)[0].decode("ascii", "replace"),
        payload=attrs.get(ATTR_PAYLOAD, b""),
        hw_protocol=hw_protocol,
        seq=seq,
        time=stamp,
        indev=interface(attrs.get(ATTR_INDEV)),
        outdev=interface(attrs.get(ATTR_OUTDEV)),
    )


def interface(value: bytes | None) -> int | None:
    return struct.unpack_from("!I", value)[0] if value and len(value) >= 4 else None


def messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, body after the netlink header) for each message in one datagram."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _, _, _ = HEADER.unpack_from(data, offset)
        if length < HEADER.size:
            return
        yield kind, data[offset + HEADER.size : offset + length]
        offset += (length + 3) & ~3


class NflogReader:
    """Bound to one group; `read` yields Records and Lost markers as they come.

    `copy` bytes of each packet are asked for (the rules' snaplen caps it anyway);
    the kernel flushes a batch after `qthresh` records, `timeout_cs` hundredths of a
    second or `nlbufsiz` bytes, so a lone drop arrives within that timeout and a flood
    in large batches (the default 4 KiB buffer holds only about 20 records).
    """

    def __init__(
        self,
        group: int,
        copy: int = 128,
        qthresh: int = 64,
        timeout_cs: int = 5,
        nlbufsiz: int = 128 << 10,
    ) -> None:
        self.group = group
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.sock.bind((0, 0))
        self.expected: int | None = None
        self.seq = 0
        self.configure(
            attribute(CFG_CMD, bytes([CMD_BIND])),
            attribute(CFG_MODE, struct.pack("!IBB", copy, COPY_PACKET, 0)),
            attribute(CFG_FLAGS, struct.pack("!H", FLAG_SEQ)),
            attribute(CFG_QTHRESH, struct.pack("!I", qthresh)),
            attribute(CFG_TIMEOUT, struct.pack("!I", timeout_cs)),
            attribute(CFG_NLBUFSIZ, struct.pack("!I", nlbufsiz)),
        )

    def configure(self, *attrs: bytes) -> None:
        """Each setting separately, so a refused one says which (EBUSY: group taken)."""
        for attr in attrs:
            self.seq += 1
            self.sock.send(config_message(self.group, self.seq, attr))
            self.ack(self.seq)

    def ack(self, seq: int) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data = self.sock.recv(65536)
            for kind, body in messages(data):
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body)[0]
                    if code:
                        raise NflogError(code, f"NFLOG group {self.group}: {os.strerror(code)}")
                    return
        raise NflogError(errno.ETIMEDOUT, f"NFLOG group {self.group}: no answer from the kernel")

    def read(self, timeout: float | None = None) -> list[Record | Lost]:
        """What one datagram holds; [] when `timeout` passes first."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            return []
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                self.expected = None
                return [Lost(None, time.time())]
            raise
        received = time.time()
        found: list[Record | Lost] = []
        for kind, body in messages(data):
            if kind != (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
                continue
            record = parse_packet(body, received)
            found += self.checked(record)
        return found

    def checked(self, record: Record) -> list[Record | Lost]:
        """The record, after a Lost for any sequence numbers it skipped."""
        found: list[Record | Lost] = []
        if record.seq is not None:
            if self.expected is not None and record.seq != self.expected:
                skipped = (record.seq - self.expected) & 0xFFFFFFFF
                if skipped < 1 << 31:
                    found.append(Lost(skipped, record.time))
            self.expected = (record.seq + 1) & 0xFFFFFFFF
        found.append(record)
        return found

    def close(self) -> None:
        try:
            self.seq += 1
            self.sock.send(
                config_message(self.group, self.seq, attribute(CFG_CMD, bytes([CMD_UNBIND])))
            )
        except OSError:
            pass
        self.sock.close()
