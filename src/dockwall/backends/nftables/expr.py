"""Builders for the pieces of libnftables JSON that dockwall emits.

Every builder produces exactly the shape `nft -j list table` prints back, so a table
read from the kernel describes to the same text as the one rendered: that equality is
what makes an unchanged ruleset plan as "in sync".
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

FAMILY = "inet"
TABLE = "dockwall"


def table_ref() -> Json:
    return {"family": FAMILY, "name": TABLE}


def payload(protocol: str, field: str) -> Json:
    return {"payload": {"protocol": protocol, "field": field}}


def meta(key: str) -> Json:
    return {"meta": {"key": key}}


def ct(key: str, direction: str | None = None) -> Json:
    """A conntrack key; `original` reads the tuple the client sent, before any DNAT."""
    body: dict[str, str] = {"key": key}
    if direction is not None:
        body["dir"] = direction
    return {"ct": body}


def concat(*parts: Any) -> Json:
    return {"concat": list(parts)}


def match(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def port_value(first: int, last: int) -> int | Json:
    """A single port, or a range nft keeps as one interval comparison."""
    return first if first == last else {"range": [first, last]}


def set_ref(name: str) -> str:
    return f"@{name}"


def vmap(key: Json, map_name: str) -> Json:
    return {"vmap": {"key": key, "data": set_ref(map_name)}}


def counter() -> Json:
    return {"counter": {"packets": 0, "bytes": 0}}


def verdict(kind: str) -> Json:
    """accept, drop or return: verdicts without a target."""
    return {kind: None}


def goto(chain: str) -> Json:
    return {"goto": {"target": chain}}


def jump(chain: str) -> Json:
    return {"jump": {"target": chain}}
