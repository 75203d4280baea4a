"""Which iptables Docker writes to: rules in the other one never see a packet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dockwall.runner import Runner

Family = Literal["ipv4", "ipv6"]
FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")


@dataclass(frozen=True)
class Variant:
    """iptables-nft or iptables-legacy, with the reason it was chosen (shown by status)."""

    kind: Literal["nft", "legacy"]
    reason: str
    docker_found: bool = True

    def save(self, family: Family) -> list[str]:
        return [f"{self.prefix(family)}-{self.kind}-save"]

    def restore(self, family: Family) -> list[str]:
        return [f"{self.prefix(family)}-{self.kind}-restore", "--noflush"]

    @staticmethod
    def prefix(family: Family) -> str:
        return "iptables" if family == "ipv4" else "ip6tables"


def has_docker_chains(runner: Runner, kind: str) -> bool:
    """Reads legacy tables only when they exist: merely listing them would create them."""
    if kind == "legacy":
        names = runner.run(["cat", "/proc/self/net/ip_tables_names"], check=False).stdout
        if "filter" not in names.split():
            return False
    result = runner.run([f"iptables-{kind}-save", "-t", "filter"], check=False)
    return result.returncode == 0 and ":DOCKER" in result.stdout


def detect(runner: Runner) -> Variant:
    """Follow Docker: the variant holding its chains, else what `iptables` points to."""
    with_docker = [k for k in ("nft", "legacy") if has_docker_chains(runner, k)]
    if len(with_docker) == 1:
        return Variant(with_docker[0], f"Docker's chains are in iptables-{with_docker[0]}")  # type: ignore[arg-type]
    version = runner.run(["iptables", "--version"], check=False).stdout
    kind: Literal["nft", "legacy"] = "legacy" if "legacy" in version else "nft"
    if with_docker:
        return Variant(kind, f"Docker's chains are in both variants; `iptables` is {kind}")
    return Variant(kind, f"no Docker chains found; `iptables` is iptables-{kind}", False)
