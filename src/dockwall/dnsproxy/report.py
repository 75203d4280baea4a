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
from dockwall.policy.fqdn import is_address, normal_name


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


def address_part(destination: str) -> str:
    """The host part of `--to`: inside [] for IPv6 with a port, before the one colon of
    IPv4 with a port, else all of it."""
    if destination.startswith("["):
        return destination[1:].partition("]")[0]
    if destination.count(":") == 1:
        return destination.partition(":")[0]
    return destination


def split_named(destination: str) -> tuple[str, str] | None:
    """(name, ':PORT/PROTO' or '') when `--to` names a domain rather than an address, a
    container or the host."""
    host = address_part(destination)
    if destination.startswith(("container:", "host:")) or is_address(host) or "." not in host:
        return None
    return normal_name(host), destination[len(host) :]


def named_destination(
    destination: str, family: int | None, entries: list[Entry] | None = None
) -> tuple[str | None, list[str]]:
    """`--to NAME:PORT/PROTO` as the learned address it stands for (None when nothing
    was learned for it), with what to say about it; `--to ADDRESS...` unchanged, with
    the names it was learned for, if any."""
    found = read_entries() if entries is None else entries
    named = split_named(destination)
    if named is None:
        address = address_part(destination)
        if not is_address(address):
            return destination, []
        return destination, [describe(e) for e in learned_address(address, found)]
    name, tail = named
    mine = [e for e in found if e.name == name]
    if family is not None:
        mine = [e for e in mine if ipaddress.ip_address(e.address).version == family]
    if not mine:
        return None, [
            f"{name}: no address learned for it (nothing opens for a name until a container "
            "resolves it through dockwall's DNS forwarder)"
        ]
    best = max(mine, key=lambda e: e.expires)
    host = f"[{best.address}]" if ":" in best.address else best.address
    return f"{host}{tail}", [describe(e) for e in mine if e.address == best.address]


def describe(entry: Entry) -> str:
    learned = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.learned))
    return (
        f"{entry.address} was learned for {entry.name} (pattern {entry.pattern}) at "
        f"{learned}, expires in {int(entry.left())} s"
    )
