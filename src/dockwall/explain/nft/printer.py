"""nftables JSON rules back into nft's own syntax, so a path reads like `nft list ruleset`.

Kept apart from the nftables backend's script writer on purpose: that one prints rules
from dockwall's IR, so it only knows the statements dockwall writes. This printer must
show any rule `nft -j` lists, whoever wrote it (Docker, firewalld, a hand-written table),
and falls back to the JSON for statements it has no spelling for; sharing one printer
would tie what explain can show to what dockwall emits.
"""

from __future__ import annotations

import json
from typing import Any

VERDICTS = ("accept", "drop", "return", "continue", "masquerade")
SKIPPED = ("counter",)


def show_rule(body: dict[str, Any]) -> str:
    parts = [show_statement(s) for s in body.get("expr", [])]
    text = " ".join(part for part in parts if part)
    if body.get("comment"):
        text += f' comment "{body["comment"]}"'
    return text


def show_statement(statement: dict[str, Any]) -> str:
    kind, value = next(iter(statement.items()))
    if kind == "match":
        op = value.get("op", "==")
        shown = "" if op in ("==", "in") else f"{op} "
        return f"{show_expr(value['left'])} {shown}{show_expr(value['right'])}"
    if kind in SKIPPED:
        return ""
    if kind in VERDICTS:
        return kind
    if kind in ("jump", "goto"):
        return f"{kind} {value['target']}"
    if kind in ("dnat", "snat"):
        port = f":{value['port']}" if "port" in value else ""
        return f"{kind} to {show_expr(value.get('addr', ''))}{port}"
    if kind == "vmap":
        return f"{show_expr(value['key'])} vmap {show_expr(value['data'])}"
    if kind == "mangle":
        return f"{show_expr(value['key'])} set {show_expr(value['value'])}"
    if kind == "reject" and isinstance(value, dict):
        if value.get("type") == "tcp reset":
            return "reject with tcp reset"
        return (
            f"reject with {value.get('type', 'icmpx')} type {value.get('expr', 'port-unreachable')}"
        )
    if kind == "log" and isinstance(value, dict) and "prefix" in value:
        return f'log prefix "{value["prefix"]}"'
    if value is None:
        return kind
    return f"{kind} {json.dumps(value, separators=(',', ':'))}"


def show_expr(expr: Any) -> str:
    if isinstance(expr, list):
        return ",".join(show_expr(e) for e in expr)
    if not isinstance(expr, dict):
        return str(expr)
    if "payload" in expr:
        return f"{expr['payload'].get('protocol', '')} {expr['payload'].get('field', '')}".strip()
    if "meta" in expr:
        key = expr["meta"]["key"]
        return key if key in ("iifname", "oifname", "iif", "oif", "mark") else f"meta {key}"
    if "ct" in expr:
        direction = f" {expr['ct']['dir']}" if "dir" in expr["ct"] else ""
        return f"ct{direction} {expr['ct']['key']}"
    if "fib" in expr:
        return f"fib {' . '.join(expr['fib'].get('flags', []))} {expr['fib'].get('result', '')}"
    if "prefix" in expr:
        return f"{expr['prefix']['addr']}/{expr['prefix']['len']}"
    if "range" in expr:
        return "-".join(show_expr(e) for e in expr["range"])
    if "set" in expr:
        return "{ " + ", ".join(show_element(e) for e in expr["set"]) + " }"
    if "&" in expr:
        left, mask = expr["&"]
        return f"{show_expr(left)} & ({show_expr(mask).replace(',', '|')})"
    if "elem" in expr:
        return show_expr(expr["elem"]["val"])
    return json.dumps(expr, separators=(",", ":"))


def show_element(element: Any) -> str:
    if isinstance(element, list) and len(element) == 2:
        return f"{show_expr(element[0])} : {show_statement(element[1])}"
    return show_expr(element)
