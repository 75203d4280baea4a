"""The filter table as iptables-save prints it, parsed just enough to diff our part."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
