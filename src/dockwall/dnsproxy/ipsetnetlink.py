"""Learned addresses written into ipsets by netlink directly, without `ipset restore`.

Why it exists: the iptables backend's forwarder paid for a fork and exec of `ipset
-exist restore` per batch of answers (milliseconds, most of a learned lookup there),
where the kernel takes microseconds. This sends what `ipset -exist add NAME ADDRESS
timeout N` sends: IPSET_CMD_ADD without NLM_F_EXCL (the kernel then treats the add as
`-exist`: an address already there gets the new timeout, on every kernel), one message
per address, all in one `send`. ipset has no transactions: as with `ipset restore`, the
adds before a refused one stay (the waiters fail closed all the same). Where the socket
cannot be opened, `kernelsets` runs `ipset restore`.

Constants are those of linux/netfilter/ipset/ip_set.h.
"""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Sequence

from dockwall.dnsproxy import netlink as nl
from dockwall.dnsproxy.netlink import SetElement

NFNL_SUBSYS_IPSET = 6
IPSET_CMD_ADD = 9
IPSET_PROTOCOL = 7
IPSET_ATTR_PROTOCOL = 1
IPSET_ATTR_SETNAME = 2
IPSET_ATTR_DATA = 7
IPSET_ATTR_IP = 1
IPSET_ATTR_TIMEOUT = 6
IPSET_ATTR_IPADDR_IPV4 = 1
IPSET_ATTR_IPADDR_IPV6 = 2
NLA_F_NET_BYTEORDER = 1 << 14
NFPROTO_IPV4 = 2
NFPROTO_IPV6 = 10
ADD = NFNL_SUBSYS_IPSET << 8 | IPSET_CMD_ADD
PER_SEND = 256  # messages per send, acked once: far below the socket's buffers
IPSET_ERRORS = {
    4097: "protocol error",
    4102: "set type mismatch",
    4107: "invalid family",
    4108: "timeout not supported by the set",
    4109: "set is referenced",
    4110: "invalid IPv4 address",
    4111: "invalid IPv6 address",
    4352: "set is full (its maxelem)",
}


def add_message(seq: int, item: SetElement) -> bytes:
    """IPSET_CMD_ADD of one address with its timeout (seconds, be32)."""
    v6 = ":" in item.address
    kind = IPSET_ATTR_IPADDR_IPV6 if v6 else IPSET_ATTR_IPADDR_IPV4
    packed = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, item.address)
    data = [
        nl.nest(IPSET_ATTR_IP, [nl.attr(kind | NLA_F_NET_BYTEORDER, packed)]),
        nl.attr(IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER, struct.pack("!I", item.seconds)),
    ]
    body = (
        nl.attr(IPSET_ATTR_PROTOCOL, bytes([IPSET_PROTOCOL]))
        + nl.text(IPSET_ATTR_SETNAME, item.set_name)
        + nl.nest(IPSET_ATTR_DATA, data)
    )
    family = NFPROTO_IPV6 if v6 else NFPROTO_IPV4
    return nl.message(ADD, nl.NLM_F_REQUEST, seq, family, 0, body)


def requests(items: Sequence[SetElement], first_seq: int) -> list[nl.Request]:
    found = [
        nl.Request(first_seq + i, add_message(first_seq + i, item),
                   f"add {item.address} to ipset {item.set_name}")
        for i, item in enumerate(items)
    ]  # fmt: skip
    return nl.acked_last(found)


class IpsetNetlink:
    """Raises OSError from the constructor where the socket cannot be opened."""

    def __init__(self) -> None:
        self.socket = nl.NetfilterSocket(IPSET_ERRORS)

    def add(self, items: Sequence[SetElement]) -> None:
        """Raises NetlinkError (ENOENT: no such set) when the kernel refused one."""
        for start in range(0, len(items), PER_SEND):
            build = functools.partial(requests, items[start : start + PER_SEND])
            self.socket.messages(build)


def load() -> IpsetNetlink | None:
    try:
        return IpsetNetlink()
    except OSError:
        return None
