"""One-line, nft-like text for libnftables JSON expressions.

Plans show these lines, and plans compare them: the rendered table and the table read
back from the kernel go through the same function, so equal rules give equal text.
Anything dockwall never emits still gets a stable (JSON) text, so a foreign rule added
by hand shows up in the diff instead of being ignored.
"""

from __future__ import annotations

import json
from typing import Any

from dockwall.backends.nftables.expr import Json

BARE_META = frozenset({"iifname", "oifname", "iif", "oif", "mark"})
VERDICTS = ("accept", "drop", "return", "continue")
TARGETS = ("goto", "jump")


def rule_text(exprs: list[Json]) -> str:
    return " ".join(statement_text(s) for s in exprs)


def statement_text(statement: Json) -> str:
    (kind, body), *_ = statement.items()
    if kind == "match":
        op = "" if body["op"] in ("==", "in") else f" {body['op']}"
        return f"{value_text(body['left'])}{op} {value_text(body['right'])}"
    if kind == "vmap":
        return f"{value_text(body['key'])} vmap {value_text(body['data'])}"
    if kind == "counter":
        return "counter"
    return verdict_text(statement)


def verdict_text(statement: Json) -> str:
    (kind, body), *_ = statement.items()
    if kind in VERDICTS:
        return str(kind)
    if kind in TARGETS and isinstance(body, dict):
        return f"{kind} {body['target']}"
    return json.dumps(statement, sort_keys=True)


def value_text(value: Any) -> str:
    """Selectors (payload, meta, ct) and constants (sets, ranges, prefixes, concatenations)."""
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, list):
        return ",".join(value_text(v) for v in value)
    if not isinstance(value, dict) or len(value) != 1:
        return json.dumps(value, sort_keys=True)
    (kind, body), *_ = value.items()
    return keyed_text(kind, body) or json.dumps(value, sort_keys=True)


def keyed_text(kind: str, body: Any) -> str | None:
    if kind == "payload":
        return f"{body['protocol']} {body['field']}"
    if kind == "meta":
        return str(body["key"]) if body["key"] in BARE_META else f"meta {body['key']}"
    if kind == "ct":
        return " ".join(str(p) for p in ("ct", body.get("dir"), body["key"]) if p)
    if kind == "concat":
        return " . ".join(value_text(v) for v in body)
    if kind == "set":
        return "{ " + ", ".join(value_text(v) for v in body) + " }"
    if kind == "range":
        return f"{value_text(body[0])}-{value_text(body[1])}"
    if kind == "prefix":
        return f"{body['addr']}/{body['len']}"
    return None
