"""What status and explain say about names: the addresses learned for each pattern.

Read from the forwarder's record in the run dir (the kernel's sets hold the same
addresses; the record also says for which name each was learned and when).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from dockwall.dnsproxy.learned import Entry, read_entries


def learned_rows(
    patterns: Iterable[str], entries: list[Entry] | None = None
) -> list[dict[str, Any]]:
    """Per pattern, its learned addresses with the seconds each has left."""
    found = read_entries() if entries is None else entries
    now = time.time()
    return [
        {
            "pattern": pattern,
            "addresses": [
                {
                    "address": e.address,
                    "name": e.name,
                    "learned": round(e.learned, 3),
                    "seconds_left": int(e.left(now)),
                }
                for e in found
                if e.pattern == pattern
            ],
        }
        for pattern in patterns
    ]


def learned_address(address: str, entries: list[Entry] | None = None) -> list[Entry]:
    """The records that put `address` into a set (for explain --to ADDRESS)."""
    wanted = ipaddress.ip_address(address)
    found = read_entries() if entries is None else entries
    return [e for e in found if ipaddress.ip_address(e.address) == wanted]


def names_text(rows: list[dict[str, Any]]) -> str:
    """`api.example.com: 192.0.2.1 (41s)`, one pattern per line, for the status table."""
    lines = []
    for row in rows:
        addresses = (
            ", ".join(f"{a['address']} ({a['seconds_left']}s)" for a in row["addresses"])
            or "nothing learned yet"
        )
        lines.append(f"{row['pattern']}: {addresses}")
    return "\n".join(lines)
