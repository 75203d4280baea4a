"""nftables JSON rules back into nft's own syntax, so a path reads like `nft list ruleset`."""

from __future__ import annotations

import json
from typing import Any

VERDICTS = ("accept", "drop", "return", "continue", "masquerade")
SKIPPED = ("counter",)


def render_rule(body: dict[str, Any]) -> str:
    parts = [render_statement(s) for s in body.get("expr", [])]
    text = " ".join(part for part in parts if part)
    if body.get("comment"):
        text += f' comment "{body["comment"]}"'
    return text


def render_statement(statement: dict[str, Any]) -> str:
    kind, value = next(iter(statement.items()))
    if kind == "match":
        op = value.get("op", "==")
        shown = "" if op in ("==", "in") else f"{op} "
        return f"{render_expr(value['left'])} {shown}{render_expr(value['right'])}"
    if kind in SKIPPED:
        return ""
    if kind in VERDICTS:
        return kind
    if kind in ("jump", "goto"):
        return f"{kind} {value['target']}"
    if kind in ("dnat", "snat"):
        port = f":{value['port']}" if "port" in value else ""
        return f"{kind} to {render_expr(value.get('addr', ''))}{port}"
    if kind == "vmap":
        return f"{render_expr(value['key'])} vmap {render_expr(value['data'])}"
    if kind == "mangle":
        return f"{render_expr(value['key'])} set {render_expr(value['value'])}"
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


def render_expr(expr: Any) -> str:
    if isinstance(expr, list):
        return ",".join(render_expr(e) for e in expr)
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
        return "-".join(render_expr(e) for e in expr["range"])
    if "set" in expr:
        return "{ " + ", ".join(render_element(e) for e in expr["set"]) + " }"
    if "&" in expr:
        left, mask = expr["&"]
        return f"{render_expr(left)} & ({render_expr(mask).replace(',', '|')})"
    if "elem" in expr:
        return render_expr(expr["elem"]["val"])
    return json.dumps(expr, separators=(",", ":"))


def render_element(element: Any) -> str:
    if isinstance(element, list) and len(element) == 2:
        return f"{render_expr(element[0])} : {render_statement(element[1])}"
    return render_expr(element)
