"""Reading the filter table back from the kernel, parsed just enough to diff our part."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dockwall.backends.iptables.detect import FAMILIES, Family, Variant
from dockwall.runner import Runner

COUNTERS = re.compile(r"^\[(\d+):(\d+)\]\s+")


@dataclass(frozen=True)
class LiveRule:
    chain: str
    text: str
    packets: int = 0
    bytes: int = 0


@dataclass
class FilterTable:
    """Chains in order of appearance, each with its rules (text after `-A CHAIN `)."""

    chains: dict[str, list[LiveRule]] = field(default_factory=dict)

    def rules(self, chain: str) -> list[str]:
        return [r.text for r in self.chains.get(chain, [])]


def parse_filter(text: str) -> FilterTable:
    """Reads the `*filter` section of iptables-save (-c optional) output."""
    table = FilterTable()
    in_filter = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            in_filter = line == "*filter"
        elif not in_filter or not line or line.startswith("#") or line == "COMMIT":
            continue
        elif line.startswith(":"):
            table.chains.setdefault(line[1:].split()[0], [])
        else:
            packets = size = 0
            if match := COUNTERS.match(line):
                packets, size = int(match[1]), int(match[2])
                line = line[match.end() :]
            _, chain, rest = line.split(" ", 2) if line.count(" ") >= 2 else (*line.split(" "), "")
            table.chains.setdefault(chain, []).append(LiveRule(chain, rest, packets, size))
    return table


def live_table(runner: Runner, variant: Variant, family: Family) -> FilterTable:
    return parse_filter(runner.run([*variant.save(family), "-c", "-t", "filter"]).stdout)


def live_tables(runner: Runner, variant: Variant) -> list[FilterTable]:
    """Both families read side by side: on the agent's path every millisecond counts."""
    with ThreadPoolExecutor(max_workers=len(FAMILIES)) as pool:
        return list(pool.map(lambda family: live_table(runner, variant, family), FAMILIES))
