"""Writes learned addresses into the active backend's sets, one transaction per answer.

nftables: before Linux 6.12, `add element` on an element that exists keeps its old
timeout. So each element is added, deleted and added again with the new timeout in one
`nft -f` transaction: the first add makes the delete safe when the element is new, the
kernel commits all three at once, so no packet ever sees the element missing, and the
result is the same on 6.1 (Debian 12) and on 6.12+ (where the re-add alone would do).
ipset: `-exist add ... timeout N` refreshes the timeout on every kernel.

Writers, fastest first: netlink directly (`nftnetlink`, `ipsetnetlink`: microseconds,
called on the forwarder's loop); for nftables libnftables (`libnft`, in-process but with
a cache fetch per transaction); `nft -f -` or `ipset -exist restore` (a subprocess: the
last resort, and the only one that can act in another namespace through the runner).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dockwall.backends.iptables import fqdn as ipt
from dockwall.backends.iptables.detect import Family
from dockwall.backends.nftables import fqdn as nft
from dockwall.backends.nftables.expr import FAMILY, TABLE
from dockwall.dnsproxy.ipsetnetlink import IpsetNetlink
from dockwall.dnsproxy.libnft import NftLibrary
from dockwall.dnsproxy.netlink import SetElement
from dockwall.dnsproxy.nftnetlink import NftNetlink
from dockwall.runner import Runner


@dataclass(frozen=True)
class Element:
    pattern: str
    address: str
    seconds: int

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version


FAMILIES: dict[int, Family] = {4: "ipv4", 6: "ipv6"}


class KernelSets(Protocol):
    def add(self, elements: Sequence[Element]) -> None:
        """Raises (CommandError, NetlinkError: DockwallErrors) when the kernel did not
        take them all."""
        ...


class NftSets:
    """By netlink when its socket opened, else libnftables, else `nft -f -`."""

    def __init__(
        self,
        runner: Runner,
        library: NftLibrary | None = None,
        netlink: NftNetlink | None = None,
    ) -> None:
        self.runner = runner
        self.library = library
        self.netlink = netlink

    def script(self, elements: Sequence[Element]) -> str:
        lines = []
        for item in elements:
            where = f"element {FAMILY} {TABLE} {nft.set_name(item.pattern, item.family)}"
            timed = f"{{ {item.address} timeout {item.seconds}s }}"
            lines += [f"add {where} {timed}", f"delete {where} {{ {item.address} }}"]
            lines.append(f"add {where} {timed}")
        return "\n".join(lines) + "\n"

    def add(self, elements: Sequence[Element]) -> None:
        if not elements:
            return
        if self.netlink is not None:
            self.netlink.add(
                [SetElement(nft.set_name(e.pattern, e.family), e.address, e.seconds)
                 for e in elements]
            )  # fmt: skip
        elif self.library is not None:
            self.library.run(self.script(elements))
        else:
            self.runner.run(["nft", "-f", "-"], input=self.script(elements))


class IpsetSets:
    """By netlink when its socket opened, else `ipset -exist restore`."""

    def __init__(self, runner: Runner, netlink: IpsetNetlink | None = None) -> None:
        self.runner = runner
        self.netlink = netlink

    def script(self, elements: Sequence[Element]) -> str:
        return "".join(
            f"add {ipt.set_name(e.pattern, FAMILIES[e.family])} {e.address} timeout {e.seconds}\n"
            for e in elements
        )

    def add(self, elements: Sequence[Element]) -> None:
        if not elements:
            return
        if self.netlink is not None:
            self.netlink.add(
                [SetElement(ipt.set_name(e.pattern, FAMILIES[e.family]), e.address, e.seconds)
                 for e in elements]
            )  # fmt: skip
        else:
            self.runner.run(["ipset", "-exist", "restore"], input=self.script(elements))


@dataclass(frozen=True)
class Writers:
    """The in-process writers that could be made (each None where it could not)."""

    library: NftLibrary | None = None
    nft: NftNetlink | None = None
    ipset: IpsetNetlink | None = None


def for_backend(name: str, runner: Runner, writers: Writers | None = None) -> KernelSets:
    made = writers or Writers()
    if name == "nftables":
        return NftSets(runner, made.library, made.nft)
    return IpsetSets(runner, made.ipset)
