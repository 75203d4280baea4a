"""Learned elements written into nf_tables sets by netlink directly, without libnftables.

Why it exists: a learned answer is held until its addresses are in the kernel, and
through libnftables each hold paid for the library's cache fetch (it lists the ruleset
before every command: 0.4-0.7 ms in the lab's namespace, most of the hold) where the
kernel itself takes microseconds. This sends the batch nft would send for the same
`add element` / `delete element` / `add element` script: NEWSETELEM with each
element's timeout, DELSETELEM, NEWSETELEM again, one transaction (why the three: the
module docstring of `kernelsets`). The kernel answers inside `send`, so the acks are
read without waiting (the forwarder still calls it in a thread: see `batch`). Where the
socket cannot be opened, `kernelsets` falls back to libnftables or `nft -f -`.

Constants are those of linux/netfilter/nf_tables.h and nfnetlink.h.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Sequence

from dockwall.dnsproxy import netlink as nl
from dockwall.dnsproxy.netlink import SetElement

NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWSETELEM = 12
NFT_MSG_DELSETELEM = 14
NFT_MSG_GETGEN = 16
NFTA_GEN_ID = 1
NFPROTO_INET = 1
NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_SET_ELEM_TIMEOUT = 4
NFTA_DATA_VALUE = 1
NEW = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM
DEL = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELSETELEM
GETGEN = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN
PER_BATCH = 512  # elements per transaction: a batch stays far below the socket's sndbuf


def key(address: str) -> bytes:
    """The address in network byte order (inet_pton: a tenth of ipaddress's cost)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_pton(family, address)


def element(address: str, seconds: int | None) -> bytes:
    """One NFTA_LIST_ELEM: the key, and the timeout in milliseconds (be64)."""
    value = nl.nest(NFTA_SET_ELEM_KEY, [nl.attr(NFTA_DATA_VALUE, key(address))])
    if seconds is None:
        return nl.nest(NFTA_LIST_ELEM, [value])
    return nl.nest(NFTA_LIST_ELEM, [value, nl.be64(NFTA_SET_ELEM_TIMEOUT, seconds * 1000)])


def elements_body(table: str, set_name: str, listed: list[bytes]) -> bytes:
    return (
        nl.text(NFTA_SET_ELEM_LIST_TABLE, table)
        + nl.text(NFTA_SET_ELEM_LIST_SET, set_name)
        + nl.nest(NFTA_SET_ELEM_LIST_ELEMENTS, listed)
    )


def by_set(items: Sequence[SetElement]) -> dict[str, dict[str, int]]:
    """set -> address -> seconds, one key per address (a duplicate delete would fail)."""
    found: dict[str, dict[str, int]] = {}
    for item in items:
        timed = found.setdefault(item.set_name, {})
        timed[item.address] = max(item.seconds, timed.get(item.address, 0))
    return found


def requests(table: str, items: Sequence[SetElement], first_seq: int) -> list[nl.Request]:
    """Per set: add with timeouts, delete, add again (refreshes the timeout on any kernel).
    Each body is encoded once: the two adds differ only in their seq. Only the last
    asks for an ack (`netlink.acked_last`)."""
    add = nl.NLM_F_REQUEST | nl.NLM_F_CREATE
    delete = nl.NLM_F_REQUEST
    found: list[nl.Request] = []
    for set_name, timed in by_set(items).items():
        added = elements_body(table, set_name, [element(a, s) for a, s in timed.items()])
        deleted = elements_body(table, set_name, [element(a, None) for a in timed])
        where = f"{len(timed)} element(s) of set inet {table} {set_name}"
        steps = ((NEW, add, added, "add"), (DEL, delete, deleted, "delete"))
        for kind, flags, body, verb in (*steps, steps[0]):
            seq = first_seq + len(found)
            data = nl.message(kind, flags, seq, NFPROTO_INET, 0, body)
            found.append(nl.Request(seq, data, f"{verb} {where}"))
    return nl.acked_last(found)


class NftNetlink:
    """Raises OSError from the constructor where the socket cannot be opened."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.socket = nl.NetfilterSocket()

    def add(self, items: Sequence[SetElement]) -> None:
        """Raises NetlinkError (ENOENT: the table or set does not exist) when a batch was
        refused; batches before it stay committed, as when nft's script is split."""
        for start in range(0, len(items), PER_BATCH):
            chunk = items[start : start + PER_BATCH]
            build = functools.partial(requests, self.table, chunk)
            self.socket.transaction(NFNL_SUBSYS_NFTABLES, build)

    def stamp(self) -> tuple[int, int]:
        """(nf_tables' generation, batches committed through this writer): the kernel
        counts one generation per committed transaction of anyone, so when both have
        grown by the same amount since a drift check read them, every commit since was
        one of ours (learned elements), and the ruleset the check saw is still live."""
        payload, commits = self.socket.query(GETGEN, nl.AF_UNSPEC, 0)
        found = nl.attributes(payload).get(NFTA_GEN_ID)
        if found is None or len(found) != 4:
            raise nl.NetlinkError("netlink: the kernel's generation reply has no id")
        return int.from_bytes(found, "big"), commits


def load(table: str) -> NftNetlink | None:
    try:
        return NftNetlink(table)
    except OSError:
        return None
