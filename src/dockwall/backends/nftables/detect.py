"""Whether Docker itself runs its nftables firewall, for `--backend auto`.

Docker 29's nftables backend keeps its rules in tables `ip docker-bridges` and
`ip6 docker-bridges` and has no DOCKER-USER chain: there an iptables backend would have
nothing to hook into, and our own nftables table is the documented way in.
"""

from __future__ import annotations

import json

from dockwall.errors import CommandError
from dockwall.runner import Runner

DOCKER_TABLES = frozenset({("ip", "docker-bridges"), ("ip6", "docker-bridges")})


def docker_uses_nftables(runner: Runner) -> bool:
    return bool(DOCKER_TABLES & nft_tables(runner)) and not has_docker_user(runner)


def nft_tables(runner: Runner) -> set[tuple[str, str]]:
    """(family, name) of every nftables table; empty when nft is missing or refuses."""
    try:
        result = runner.run(["nft", "-j", "list", "tables"], check=False)
    except CommandError:
        return set()
    if result.returncode != 0:
        return set()
    try:
        entries = json.loads(result.stdout)["nftables"]
    except (ValueError, KeyError, TypeError):
        return set()
    return {(str(e["table"]["family"]), str(e["table"]["name"])) for e in entries if "table" in e}


def has_docker_user(runner: Runner) -> bool:
    """A missing iptables binary counts as no DOCKER-USER: there is nothing to hook then."""
    try:
        result = runner.run(["iptables", "-w", "-S", "DOCKER-USER"], check=False)
    except CommandError:
        return False
    return result.returncode == 0


def native_nftables_table(runner: Runner) -> str | None:
    """A table only native nftables makes (family inet, netdev or bridge; iptables-nft
    never does), other than ours: the host's own firewall is nftables then."""
    for family, name in sorted(nft_tables(runner)):
        if family in ("inet", "netdev", "bridge") and (family, name) != ("inet", "dockwall"):
            return f"{family} {name}"
    return None
