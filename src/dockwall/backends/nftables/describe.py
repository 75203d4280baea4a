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
from dockwall.backends.nftables.intervals import collapsed, element_networks, network_text

BARE_META = frozenset({"iifname", "oifname", "iif", "oif", "mark"})
VERDICTS = ("accept", "drop", "return", "continue")
TARGETS = ("goto", "jump")


FAMILY_PROTOCOLS = {"ipv4": "icmp", "ipv6": "ipv6-icmp"}
FAMILY_PAYLOADS = {"ipv4": "ip", "ipv6": "ip6"}


def rule_text(exprs: list[Json]) -> str:
    return " ".join([statement_text(s) for s in without_implied_family(exprs)])


def without_implied_family(exprs: list[Json]) -> list[Json]:
    """nft prints `meta nfproto ipv6 meta l4proto ipv6-icmp` as `meta l4proto ipv6-icmp`:
    the protocol of one family stands for the family. So the family match goes from
    both sides (ICMP for IPv4 likewise)."""
    kept: list[Json] = []
    for index, statement in enumerate(exprs):
        family = match_value(statement, "nfproto")
        following = exprs[index + 1] if index + 1 < len(exprs) else {}
        if family is not None and match_value(following, "l4proto") == FAMILY_PROTOCOLS.get(family):
            continue
        if family is not None and payload_protocol(following) == FAMILY_PAYLOADS.get(family):
            continue
        kept.append(statement)
    return kept


def payload_protocol(statement: Json) -> str | None:
    """`ip` of `ip saddr ...`: an address match stands for its family too."""
    body = statement.get("match")
    left = body.get("left") if isinstance(body, dict) else None
    payload = left.get("payload") if isinstance(left, dict) else None
    return payload.get("protocol") if isinstance(payload, dict) else None


def match_value(statement: Json, meta_key: str) -> str | None:
    """The right side of `meta KEY == VALUE`, or None for any other statement."""
    body = statement.get("match")
    if not isinstance(body, dict) or body.get("op") != "==":
        return None
    if body.get("left") != {"meta": {"key": meta_key}}:
        return None
    right = body.get("right")
    return right if isinstance(right, str) else None


def statement_text(statement: Json) -> str:
    kind = next(iter(statement))
    if kind == "match":
        body = statement[kind]
        op = body["op"]
        op = "" if op in ("==", "in") else f" {op}"
        return f"{value_text(body['left'])}{op} {right_text(body['right'])}"
    if kind == "counter":
        return "counter"
    if kind == "limit" and isinstance(statement[kind], str):
        return f"limit name {statement[kind]}"
    if kind == "log" and isinstance(statement[kind], dict):
        return log_text(statement[kind])
    if kind == "vmap":
        body = statement[kind]
        return f"{value_text(body['key'])} vmap {value_text(body['data'])}"
    return verdict_text(statement)


def log_text(body: Json) -> str:
    """`log prefix "dw:i:p4" group 2710 snaplen 128`, nft's own order; an unusual log
    statement keeps a JSON text, so it is never mistaken for one of ours."""
    if set(body) != {"prefix", "group", "snaplen"}:
        return json.dumps({"log": body}, sort_keys=True)
    return f'log prefix "{body["prefix"]}" group {body["group"]} snaplen {body["snaplen"]}'


def verdict_text(statement: Json) -> str:
    kind = next(iter(statement))
    if kind in VERDICTS:
        return str(kind)
    body = statement[kind]
    if kind in TARGETS and isinstance(body, dict):
        return f"{kind} {body['target']}"
    if kind == "redirect" and isinstance(body, dict) and set(body) == {"port"}:
        return f"redirect to :{body['port']}"
    if kind == "reject" and isinstance(body, dict):
        return reject_text(body) or json.dumps(statement, sort_keys=True)
    return json.dumps(statement, sort_keys=True)


def reject_text(body: Json) -> str | None:
    """The two rejects dockwall writes, as nft prints them."""
    if body.get("type") == "tcp reset" and body.get("expr") is None:
        return "reject with tcp reset"
    if body.get("type") == "icmpx" and isinstance(body.get("expr"), str):
        return f"reject with icmpx {body['expr']}"
    return None


def right_text(value: Any) -> str:
    """The value a match compares with, in the one form nft prints it back in.

    Anonymous address sets, prefixes and ranges read as the addresses they cover, merged
    and in order (nft may print a set's prefixes merged or as ranges; a /32 or /128
    prefix as the bare address). A set of one element is that element and a range of
    one value is that value, as nft prints both. An interface wildcard (`br-*`) is
    quoted, as nft needs it."""
    if type(value) is str:
        return f'"{value}"' if value.endswith("*") else value
    if isinstance(value, dict):
        single = single_value(value)
        if single is not None:
            return right_text(single)
        if "set" in value or "range" in value or "prefix" in value:
            text = addresses_text(value)
            if text is not None:
                return text
    return value_text(value)


def single_value(value: Json) -> Any:
    """The one element of a one-element set, or the value of a range from v to v."""
    elements = value.get("set")
    if isinstance(elements, list) and len(elements) == 1:
        return elements[0]
    bounds = value.get("range")
    if isinstance(bounds, list) and len(bounds) == 2 and bounds[0] == bounds[1]:
        return bounds[0]
    return None


def addresses_text(value: Json) -> str | None:
    """None unless every element is an IP address, prefix or address range."""
    elements = value.get("set", [value])
    if not isinstance(elements, list):
        return None
    try:
        networks = collapsed(n for element in elements for n in element_networks(element))
    except (ValueError, TypeError, KeyError):
        return None
    if not networks:
        return None
    texts = [network_text(n) for n in networks]
    return texts[0] if len(texts) == 1 else "{ " + ", ".join(texts) + " }"


def value_text(value: Any) -> str:
    """Selectors (payload, meta, ct) and constants (sets, ranges, prefixes, concatenations)."""
    if isinstance(value, dict) and len(value) == 1:
        kind = next(iter(value))
        return keyed_text(kind, value[kind]) or json.dumps(value, sort_keys=True)
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, list):
        return ",".join([value_text(v) for v in value])
    return json.dumps(value, sort_keys=True)


def keyed_text(kind: str, body: Any) -> str | None:
    if kind == "payload":
        return f"{body['protocol']} {body['field']}"
    if kind == "meta":
        return str(body["key"]) if body["key"] in BARE_META else f"meta {body['key']}"
    if kind == "ct":
        return " ".join(str(p) for p in ("ct", body.get("dir"), body["key"]) if p)
    if kind == "concat":
        return " . ".join([value_text(v) for v in body])
    if kind == "set":
        return "{ " + ", ".join([value_text(v) for v in body]) + " }"
    if kind == "range":
        return f"{value_text(body[0])}-{value_text(body[1])}"
    if kind == "prefix":
        return f"{body['addr']}/{body['len']}"
    return None
