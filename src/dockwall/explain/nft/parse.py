"""`nft -j list ruleset` into the typed model.

Tables that iptables-nft manages are skipped when the caller already has them from
iptables-save (same rules, better text). Every other table counts, whoever made it:
Docker 29's `docker-bridges`, firewalld, a hand-written `inet filter`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, Literal

from dockwall.errors import DockwallError
from dockwall.explain.addresses import parse_address
from dockwall.explain.netfilter import (
    Accept,
    Action,
    BaseHook,
    Chain,
    Condition,
    Continue,
    Drop,
    Goto,
    Jump,
    Nat,
    Return,
    Rule,
    SetMark,
    Table,
    UnknownAction,
    Unsupported,
    Vmap,
)
from dockwall.explain.nft import values as v
from dockwall.explain.nft.matches import match_conditions
from dockwall.explain.nft.printer import show_rule

OBSERVING = frozenset({"counter", "log", "comment", "set", "update", "quota-used"})
HOOKS = frozenset({"prerouting", "input", "forward", "output", "postrouting", "ingress"})


def parse_nft_json(text: str, skip: Collection[tuple[str, str]] = ()) -> list[Table]:
    """Tables from nft's JSON; `skip` holds (family, name) pairs already read elsewhere."""
    try:
        objects = json.loads(text)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DockwallError(f"nft -j output is not nftables JSON: {exc}") from exc
    tables: dict[tuple[str, str], Table] = {}
    sets: dict[tuple[str, str], v.Sets] = {}
    rules: list[dict[str, Any]] = []
    for item in objects:
        kind, body = next(iter(item.items()))
        key = (body.get("family", ""), body.get("table", body.get("name", "")))
        if kind == "table" and key not in skip:
            tables[key] = Table(body["family"], body["name"], "nftables")
        elif kind == "chain" and key in tables:
            tables[key].chains[body["name"]] = Chain(body["name"], base=base_hook(body))
        elif kind in ("set", "map") and key in tables:
            sets.setdefault(key, {})[body["name"]] = body.get("elem", [])
        elif kind == "rule" and key in tables:
            rules.append(body)
    for body in rules:
        key = (body["family"], body["table"])
        chain = tables[key].chains.get(body["chain"])
        if chain is not None:
            chain.rules.append(parse_rule(body, sets.get(key, {})))
    return list(tables.values())


def base_hook(chain: dict[str, Any]) -> BaseHook | None:
    hook = chain.get("hook")
    if hook not in HOOKS:
        return None
    policy: Literal["accept", "drop"] = "drop" if chain.get("policy") == "drop" else "accept"
    kind = chain.get("type", "filter")
    return BaseHook(hook, int(chain.get("prio", 0)), kind, policy)


def parse_rule(body: dict[str, Any], sets: v.Sets) -> Rule:
    """Statements in order: matches become conditions, the last verdict is the action."""
    text = show_rule(body)
    conditions: list[Condition] = []
    effects: list[SetMark] = []
    action: Action = Continue("counter")
    for statement in body.get("expr", []):
        kind, value = next(iter(statement.items()))
        if kind == "match":
            conditions += safe_match(value, sets)
        elif kind == "mangle":
            mark = mark_effect(value)
            if mark is not None:
                effects.append(mark)
        elif kind == "xt" and value.get("type") == "target":
            action = UnknownAction(f"iptables target {value.get('name')} (xt)")
        elif kind in ("limit", "xt", "ct count", "meter"):
            conditions.append(Condition(Unsupported(f"{kind} {json.dumps(value)}")))
        elif kind not in OBSERVING:
            action = statement_action(kind, value, sets)
    return Rule(tuple(conditions), action, text, tuple(effects))


def safe_match(match: dict[str, Any], sets: v.Sets) -> list[Condition]:
    try:
        return match_conditions(match, sets)
    except (v.UnsupportedValue, DockwallError) as exc:
        return [Condition(Unsupported(f"{show_match(match)} ({exc})"))]


def show_match(match: dict[str, Any]) -> str:
    return show_rule({"expr": [{"match": match}]})


def mark_effect(value: dict[str, Any]) -> SetMark | None:
    if value.get("key") == {"meta": {"key": "mark"}} and isinstance(value.get("value"), int):
        return SetMark(value["value"], 0xFFFFFFFF)
    return None


def statement_action(kind: str, value: Any, sets: v.Sets) -> Action:
    simple: dict[str, Action] = {
        "accept": Accept(), "drop": Drop(),
        "return": Return(), "continue": Continue("continue"), "masquerade": Nat("masquerade"),
    }  # fmt: skip
    if kind in simple:
        return simple[kind]
    if kind == "reject":
        return reject_action(value)
    if kind in ("jump", "goto"):
        target = value["target"]
        return Jump(target) if kind == "jump" else Goto(target)
    if kind in ("dnat", "snat", "redirect"):
        return nat_action(kind, value or {})
    if kind == "vmap":
        return vmap_action(value, sets)
    return UnknownAction(f"{kind} {json.dumps(value)}")


def reject_action(value: Any) -> Drop:
    """`reject with tcp reset` is {"type": "tcp reset"}; a bare `reject` lists as
    {"type": "icmpx", "expr": "port-unreachable"} (older nft: null)."""
    if not isinstance(value, dict):
        return Drop(reject="icmpx port-unreachable")
    kind = str(value.get("type", "icmpx"))
    if kind == "tcp reset":
        return Drop(reject=kind)
    return Drop(reject=f"{kind} {value.get('expr', 'port-unreachable')}")


def nat_action(kind: str, value: dict[str, Any]) -> Action:
    address, port = value.get("addr"), value.get("port")
    if (address is not None and not isinstance(address, str)) or (
        port is not None and not isinstance(port, int)
    ):
        return UnknownAction(f"{kind} {json.dumps(value)}")
    if kind == "redirect":
        return Nat("redirect", port=port)
    parsed = parse_address(address)[1] if address else None
    if parsed is None and kind == "snat":
        return UnknownAction(f"snat {json.dumps(value)}")
    return Nat("dnat" if kind == "dnat" else "snat", parsed, port)


def vmap_action(value: dict[str, Any], sets: v.Sets) -> Action:
    """Each map entry becomes `key == element -> verdict`, evaluated in order."""
    try:
        entries = v.items(value["data"], sets)
        result: list[tuple[Condition, Action]] = []
        for element in entries:
            key, verdict = element
            (condition,) = match_conditions({"op": "==", "left": value["key"], "right": key}, sets)[
                -1:
            ]
            verdict_kind, verdict_value = next(iter(verdict.items()))
            result.append((condition, statement_action(verdict_kind, verdict_value, sets)))
    except (v.UnsupportedValue, DockwallError, ValueError, TypeError, KeyError) as exc:
        return UnknownAction(f"vmap {json.dumps(value)} ({exc})")
    return Vmap(tuple(result))
