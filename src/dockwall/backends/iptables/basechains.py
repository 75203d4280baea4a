"""The nftables base chains iptables-nft would create for our hooks, made by us instead.

iptables-nft creates a built-in chain (`chain INPUT` in `table ip filter`) the first time
a rule goes into it, and never removes it: iptables-save looks the same afterwards, but
`nft list ruleset` does not. So before our first hook goes in, dockwall creates any
missing table and base chain itself, exactly as iptables-nft would (priority filter,
policy accept) plus the comment CREATED. After every load, a chain carrying that
comment which is empty again with policy accept (and then such a table with no chains
left) is deleted: reset leaves the ruleset as it found it. A chain someone else made, or
one that has rules or another policy now, is never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from dockwall.backends.iptables.detect import Family
from dockwall.errors import CommandError
from dockwall.runner import Runner

CREATED = "dockwall-created"
NFT_FAMILY: dict[Family, str] = {"ipv4": "ip", "ipv6": "ip6"}
HOOKED = (("INPUT", "input"), ("FORWARD", "forward"))
CHAIN = re.compile(r"\s*chain (\S+) \{\s*$")


@dataclass
class ChainText:
    comment: str | None = None
    policy: str | None = None
    rules: int = 0


@dataclass
class TableText:
    comment: str | None = None
    chains: dict[str, ChainText] = field(default_factory=dict)


def parse_table(text: str) -> TableText:
    """`nft list table` text: the JSON listing of nft 1.0 leaves comments out."""
    table = TableText()
    current: ChainText | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if match := CHAIN.fullmatch(line):
            current = table.chains[match[1]] = ChainText()
        elif stripped == "}":
            current = None
        elif stripped.startswith("comment "):
            value = stripped.removeprefix("comment ").strip('"')
            if current is None:
                table.comment = value
            else:
                current.comment = value
        elif current is not None and stripped.startswith("type "):
            found = re.search(r"policy (\w+);", stripped)
            current.policy = found[1] if found else None
        elif current is not None and stripped:
            current.rules += 1
    return table


def listing(runner: Runner, family: Family) -> TableText | None:
    """None when the table does not exist (or nft cannot say)."""
    try:
        result = runner.run(["nft", "list", "table", NFT_FAMILY[family], "filter"], check=False)
    except CommandError:
        return None
    return parse_table(result.stdout) if result.returncode == 0 else None


def missing_script(table: TableText | None, family: Family) -> str:
    """The table and base chains our hooks need that are not there yet."""
    where = f"{NFT_FAMILY[family]} filter"
    lines = [] if table is not None else [f'add table {where} {{ comment "{CREATED}"; }}']
    for chain, hook in HOOKED:
        if table is None or chain not in table.chains:
            lines.append(
                f"add chain {where} {chain} {{ type filter hook {hook} priority 0; "
                f'policy accept; comment "{CREATED}"; }}'
            )
    return "".join(line + "\n" for line in lines)


def leftover_script(table: TableText | None, family: Family) -> str:
    """Deletes what we created that nobody uses any more."""
    if table is None:
        return ""
    where = f"{NFT_FAMILY[family]} filter"
    unused = [
        name
        for name, chain in table.chains.items()
        if chain.comment == CREATED and chain.policy == "accept" and chain.rules == 0
    ]
    lines = [f"delete chain {where} {name}" for name in unused]
    if table.comment == CREATED and len(unused) == len(table.chains):
        lines.append(f"delete table {where}")
    return "".join(line + "\n" for line in lines)


def load(runner: Runner, script: str) -> None:
    """Best effort: where nft is missing or refuses, iptables-nft makes (and keeps) the
    chains itself, as before; the firewall is the same either way."""
    if script:
        try:
            runner.run(["nft", "-f", "-"], input=script)
        except CommandError:
            return


def prepare(runner: Runner, family: Family) -> None:
    load(runner, missing_script(listing(runner, family), family))


def tidy(runner: Runner, family: Family) -> None:
    load(runner, leftover_script(listing(runner, family), family))


@dataclass(frozen=True)
class BaseChains:
    """A transaction step: `prepare` before the first load of a family, `tidy` after."""

    action: Literal["prepare", "tidy"]
    family: Family

    def run(self, runner: Runner) -> None:
        (prepare if self.action == "prepare" else tidy)(runner, self.family)
