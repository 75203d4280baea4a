"""Right-hand sides of nftables JSON matches: scalars, prefixes, ranges, sets.

A named set (`@allow`) is looked up in its table once, at parse time, so evaluation
never touches JSON again.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from dockwall.errors import DockwallError
from dockwall.explain.addresses import parse_net
from dockwall.explain.netfilter import Net

ICMP_TYPES = {
    "echo-reply": 0, "destination-unreachable": 3, "redirect": 5, "echo-request": 8,
    "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11,
    "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14,
}  # fmt: skip
ICMPV6_TYPES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
    "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
    "mld-listener-query": 130, "mld-listener-report": 131, "mld-listener-done": 132,
    "nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
    "nd-neighbor-advert": 136, "nd-redirect": 137,
}  # fmt: skip
Sets = dict[str, list[Any]]


class UnsupportedValue(DockwallError):
    """A right-hand side the simulator has no model for (a map lookup, a concatenation)."""


def items(value: Any, sets: Sets) -> list[Any]:
    """The elements a match compares against, with named sets expanded."""
    if isinstance(value, str) and value.startswith("@"):
        if value[1:] not in sets:
            raise UnsupportedValue(f"set {value} not found")
        return [unwrap(element) for element in sets[value[1:]]]
    if isinstance(value, dict) and "set" in value:
        return [unwrap(element) for element in value["set"]]
    if isinstance(value, list):
        return list(value)
    return [value]


def unwrap(element: Any) -> Any:
    """Set elements with timeouts or comments come as {"elem": {"val": ...}}."""
    if isinstance(element, dict) and "elem" in element:
        return element["elem"]["val"]
    return element


def nets(values: list[Any]) -> tuple[Net, ...]:
    found: list[Net] = []
    for value in values:
        if isinstance(value, str):
            found.append(parse_net(value))
        elif isinstance(value, dict) and "prefix" in value:
            found.append(parse_net(f"{value['prefix']['addr']}/{value['prefix']['len']}"))
        elif isinstance(value, dict) and "range" in value:
            low, high = (ipaddress.ip_address(v) for v in value["range"])
            found += [parse_net(str(n)) for n in ipaddress.summarize_address_range(low, high)]
        else:
            raise UnsupportedValue(f"address {value!r}")
    return tuple(found)


def port_ranges(values: list[Any], op: str) -> tuple[tuple[int, int], ...]:
    """Ports and port ranges; `<`, `>=` and friends become ranges too."""
    if op in ("<", "<=", ">", ">="):
        bound = int(values[0])
        return {
            "<": ((0, bound - 1),), "<=": ((0, bound),),
            ">": ((bound + 1, 65535),), ">=": ((bound, 65535),),
        }[op]  # fmt: skip
    ranges: list[tuple[int, int]] = []
    for value in values:
        if isinstance(value, int):
            ranges.append((value, value))
        elif isinstance(value, dict) and "range" in value:
            ranges.append((int(value["range"][0]), int(value["range"][1])))
        elif isinstance(value, str) and value.isdigit():
            ranges.append((int(value), int(value)))
        else:
            raise UnsupportedValue(f"port {value!r}")
    return tuple(ranges)


def icmp_type(value: Any, version: int) -> int:
    if isinstance(value, int):
        return value
    table = ICMP_TYPES if version == 4 else ICMPV6_TYPES
    if value not in table:
        raise UnsupportedValue(f"icmp type {value!r}")
    return table[value]


def strings(values: list[Any]) -> tuple[str, ...]:
    if not all(isinstance(value, str) for value in values):
        raise UnsupportedValue(f"names {values!r}")
    return tuple(values)
