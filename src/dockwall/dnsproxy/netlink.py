"""nfnetlink by hand: attributes, messages, and a socket that sends one and reads its acks.

Only what the set writers need (`nftnetlink`, `ipsetnetlink`): the standard library's
`socket` and `struct`, no dependency. The kernel handles a netfilter netlink request
inside the sender's `send` call and queues every reply before `send` returns, so the
acks are read without waiting; a reply that is not there is a failure, never a wait. Constants are
those of linux/netlink.h and linux/netfilter/nfnetlink.h.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from dockwall.errors import DockwallError

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04
NLM_F_CREATE = 0x400
NLMSG_ERROR = 0x2
NLA_F_NESTED = 1 << 15
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFNETLINK_V0 = 0
AF_UNSPEC = 0

HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, port id
NFGEN = struct.Struct("!BBH")  # nfgenmsg: family, version, res_id (big-endian)
ATTR = struct.Struct("=HH")  # nlattr: length, type
ERROR = struct.Struct("=i")  # nlmsgerr's error, then the request's header
RECEIVE = 1 << 16


class NetlinkError(DockwallError):
    """The kernel refused a request (the whole batch is then undone), or its acks did
    not all come back: either way the caller must treat nothing as written."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def attr(kind: int, payload: bytes) -> bytes:
    return padded(ATTR.pack(ATTR.size + len(payload), kind) + payload)


def nest(kind: int, parts: Iterable[bytes]) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def text(kind: int, value: str) -> bytes:
    """A NUL-terminated string attribute (NLA_STRING)."""
    return attr(kind, value.encode() + b"\0")


def be64(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!Q", value))


def message(kind: int, flags: int, seq: int, family: int, res_id: int, body: bytes) -> bytes:
    """One nfnetlink message: nlmsghdr, nfgenmsg, attributes."""
    payload = NFGEN.pack(family, NFNETLINK_V0, res_id) + body
    return padded(HEADER.pack(HEADER.size + len(payload), kind, flags, seq, 0) + payload)


@dataclass(frozen=True)
class SetElement:
    """An address for a named set (nf_tables or ipset), with its timeout in seconds."""

    set_name: str
    address: str
    seconds: int


@dataclass(frozen=True)
class Request:
    """A message of a batch and what it does, to name it when the kernel refuses it."""

    seq: int
    data: bytes
    what: str


def batch(subsystem: int, begin: int, requests: list[Request], end: int) -> bytes:
    """A transaction: the kernel commits every request between begin and end, or none."""
    start = message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, begin, AF_UNSPEC, subsystem, b"")
    stop = message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, end, AF_UNSPEC, subsystem, b"")
    return start + b"".join(r.data for r in requests) + stop


def errors_of(data: bytes) -> dict[int, int]:
    """seq -> error (0 for an ack, else a negative errno) of the NLMSG_ERROR replies."""
    found: dict[int, int] = {}
    at = 0
    while at + HEADER.size <= len(data):
        length, kind, _, seq, _ = HEADER.unpack_from(data, at)
        if length < HEADER.size or at + length > len(data):
            break
        if kind == NLMSG_ERROR and length >= HEADER.size + ERROR.size:
            (code,) = ERROR.unpack_from(data, at + HEADER.size)
            if found.get(seq, 0) == 0:
                found[seq] = code
        at += (length + 3) & ~3
    return found


def reply_payload(data: bytes, seq: int) -> bytes:
    """The attributes of the reply to request `seq` (after nlmsghdr and nfgenmsg); an
    error reply or none raises NetlinkError."""
    at = 0
    while at + HEADER.size <= len(data):
        length, kind, _, found, _ = HEADER.unpack_from(data, at)
        if length < HEADER.size or at + length > len(data):
            break
        if found == seq:
            if kind == NLMSG_ERROR:
                (code,) = ERROR.unpack_from(data, at + HEADER.size)
                raise refusal(-code, "query")
            return data[at + HEADER.size + NFGEN.size : at + length]
        at += (length + 3) & ~3
    raise NetlinkError("netlink: query: no reply from the kernel")


def attributes(data: bytes) -> dict[int, bytes]:
    """type -> payload of a flat attribute list (nested flag cleared)."""
    found: dict[int, bytes] = {}
    at = 0
    while at + ATTR.size <= len(data):
        length, kind = ATTR.unpack_from(data, at)
        if length < ATTR.size or at + length > len(data):
            break
        found[kind & ~NLA_F_NESTED] = data[at + ATTR.size : at + length]
        at += (length + 3) & ~3
    return found


def refusal(code: int, what: str, private: Mapping[int, str] | None = None) -> NetlinkError:
    """The error of a refused request: errno's text, or the subsystem's own for the codes
    it defines above errno's (ipset's 4096 and up)."""
    said = (private or {}).get(code)
    if said is None:
        said = f"{os.strerror(code)} ({errno.errorcode.get(code, str(code))})"
    return NetlinkError(f"netlink: {what}: {said}", code)


def acked_last(requests: list[Request]) -> list[Request]:
    """The batch with NLM_F_ACK on its last request only. The kernel reports an error of
    any request whatever its flags, all of them after the whole batch ran and in order,
    then the last one's ack: so once that ack is read, every reply has been, with one
    receive (each is a system call that gives up the GIL) instead of one per request."""
    if not requests:
        return requests
    last = requests[-1]
    length, kind, flags, seq, port = HEADER.unpack_from(last.data)
    header = HEADER.pack(length, kind, flags | NLM_F_ACK, seq, port)
    return [*requests[:-1], Request(last.seq, header + last.data[HEADER.size :], last.what)]


def check(
    replies: dict[int, int],
    requests: list[Request],
    begin: int,
    private: Mapping[int, str] | None = None,
) -> None:
    """Raises unless no request was refused and the last was acked; a commit that failed
    is reported against the batch's begin message."""
    failed = replies.get(begin, 0)
    if failed:
        raise refusal(-failed, "commit", private)
    for request in requests:
        code = replies.get(request.seq, 0)
        if code:
            raise refusal(-code, request.what, private)
    if requests and requests[-1].seq not in replies:
        raise NetlinkError(f"netlink: {requests[-1].what}: no ack from the kernel")


class NetfilterSocket:
    """One NETLINK_NETFILTER socket, opened in the caller's network namespace; shared by
    the forwarder's loop and the agent's restore, hence the lock (held microseconds)."""

    def __init__(self, private: Mapping[int, str] | None = None) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.private = private
        self.lock = threading.Lock()
        self.seq = 0
        self.commits = 0

    def transaction(self, subsystem: int, build: Callable[[int], list[Request]]) -> None:
        """Sends the requests `build` numbers from the seq it is given, as one batch, and
        raises (NetlinkError) unless the kernel committed them all."""
        self.exchange(build, subsystem)

    def messages(self, build: Callable[[int], list[Request]]) -> None:
        """The same without a batch, for a subsystem without transactions (ipset): the
        kernel runs each message in turn, the ones before a refused one stay done."""
        self.exchange(build, None)

    def exchange(self, build: Callable[[int], list[Request]], subsystem: int | None) -> None:
        with self.lock:
            begin = self.seq + 1
            requests = build(begin + 1)
            end = begin + len(requests) + 1
            self.seq = end % (1 << 30)
            if subsystem is None:
                data = b"".join(r.data for r in requests)
            else:
                data = batch(subsystem, begin, requests, end)
            try:
                self.sock.send(data)
            except OSError as exc:
                raise NetlinkError(f"netlink: send: {exc}", exc.errno or 0) from exc
            replies = self.replies(requests[-1].seq if requests else begin)
            check(replies, requests, begin, self.private)
            if subsystem is not None and requests:
                self.commits += 1

    def query(self, kind: int, family: int, res_id: int) -> tuple[bytes, int]:
        """The payload of the kernel's one reply to a get request without attributes,
        with the number of batches this socket has committed, both read under the lock
        so that no batch of ours falls between them (see `nftnetlink.NftNetlink.stamp`)."""
        with self.lock:
            self.seq = self.seq % (1 << 30) + 1
            request = message(kind, NLM_F_REQUEST, self.seq, family, res_id, b"")
            try:
                self.sock.send(request)
                data = self.sock.recv(RECEIVE, socket.MSG_DONTWAIT)
            except OSError as exc:
                raise NetlinkError(f"netlink: query: {exc}", exc.errno or 0) from exc
            return reply_payload(data, self.seq), self.commits

    def replies(self, last: int) -> dict[int, int]:
        """The replies waiting, by seq, up to the one to `last` (or until none is left:
        `check` then finds the ack missing). Replies to an earlier transaction (none,
        unless one failed half-read) are read too, and ignored by `check`."""
        found: dict[int, int] = {}
        while last not in found:
            try:
                data = self.sock.recv(RECEIVE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as exc:  # ENOBUFS: replies were lost, so nothing is known
                raise NetlinkError(f"netlink: receive: {exc}", exc.errno or 0) from exc
            for seq, code in errors_of(data).items():
                if found.get(seq, 0) == 0:
                    found[seq] = code
        return found

    def close(self) -> None:
        self.sock.close()
