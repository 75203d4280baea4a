"""Writes learned addresses into the active backend's sets, one transaction per answer.

nftables: before Linux 6.12, `add element` on an element that exists keeps its old
timeout. So each element is added, deleted and added again with the new timeout in one
`nft -f` transaction: the first add makes the delete safe when the element is new, the
kernel commits all three at once, so no packet ever sees the element missing, and the
result is the same on 6.1 (Debian 12) and on 6.12+ (where the re-add alone would do).
ipset: `-exist add ... timeout N` refreshes the timeout on every kernel.
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
from dockwall.dnsproxy.libnft import NftLibrary
from dockwall.runner import Runner


@dataclass(frozen=True)
class Element:
    pattern: str
    address: str
    seconds: int

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version


class KernelSets(Protocol):
    def add(self, elements: Sequence[Element]) -> None:
        """Raises (CommandError) when the kernel did not take them all."""
        ...


class NftSets:
    """Through libnftables when it loads (no subprocess per answer), else `nft -f -`."""

    def __init__(self, runner: Runner, library: NftLibrary | None = None) -> None:
        self.runner = runner
        self.library = library

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
        if self.library is not None:
            self.library.run(self.script(elements))
        else:
            self.runner.run(["nft", "-f", "-"], input=self.script(elements))


class IpsetSets:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def script(self, elements: Sequence[Element]) -> str:
        families: dict[int, Family] = {4: "ipv4", 6: "ipv6"}
        return "".join(
            f"add {ipt.set_name(e.pattern, families[e.family])} {e.address} timeout {e.seconds}\n"
            for e in elements
        )

    def add(self, elements: Sequence[Element]) -> None:
        if elements:
            self.runner.run(["ipset", "-exist", "restore"], input=self.script(elements))


def for_backend(name: str, runner: Runner, library: NftLibrary | None = None) -> KernelSets:
    return NftSets(runner, library) if name == "nftables" else IpsetSets(runner)
