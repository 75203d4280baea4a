"""nftables JSON match expressions into simulator tests.

nft adds implicit dependencies when it prints (`ip saddr` in an inet table means
IPv4, `tcp dport` means TCP); they are made explicit here so the simulator never has
to know which table family a rule came from.
"""

from __future__ import annotations

from typing import Any

from dockwall.explain.netfilter import (
    PROTOCOLS,
    Addr,
    AddrType,
    AnyOf,
    Condition,
    CtAddr,
    CtDir,
    CtPort,
    CtState,
    IcmpType,
    Iface,
    Mark,
    NfProto,
    PktType,
    Port,
    Proto,
    TcpFlags,
    Test,
)
from dockwall.explain.nft import values as v

L4 = {"tcp": 6, "udp": 17, "sctp": 132, "udplite": 136}
NEGATING_OPS = ("!=",)
CT_ADDR_KEYS = {"ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr", "saddr", "daddr"}


def match_conditions(match: dict[str, Any], sets: v.Sets) -> list[Condition]:
    """One JSON match into conditions; raises UnsupportedValue when it cannot be modelled."""
    op = match.get("op", "==")
    left, right = match["left"], match["right"]
    negate = op in NEGATING_OPS
    if op not in ("==", "!=", "in", "<", "<=", ">", ">="):
        raise v.UnsupportedValue(f"operator {op}")
    values = v.items(right, sets)
    if isinstance(left, dict) and "concat" in left:
        return [Condition(concat_test(left["concat"], values, op, sets), negate)]
    tests = left_tests(left, values, op)
    if not tests:
        raise v.UnsupportedValue(f"match on {left!r}")
    *implied, main = tests
    return [Condition(t) for t in implied] + [Condition(main, negate)]


def concat_test(keys: list[Any], values: list[Any], op: str, sets: v.Sets) -> AnyOf:
    """`a . b . c` against elements `x . y . z`: each element is a conjunction."""
    if op not in ("==", "!=", "in"):
        raise v.UnsupportedValue(f"operator {op} on a concatenation")
    options: list[tuple[Condition, ...]] = []
    for value in values:
        parts = value.get("concat") if isinstance(value, dict) else None
        if not isinstance(parts, list) or len(parts) != len(keys):
            raise v.UnsupportedValue(f"element {value!r} of a {len(keys)}-part concatenation")
        conditions: list[Condition] = []
        for key, part in zip(keys, parts, strict=True):
            conditions += match_conditions({"op": "==", "left": key, "right": part}, sets)
        options.append(tuple(conditions))
    return AnyOf(tuple(options))


def left_tests(left: Any, values: list[Any], op: str) -> list[Test]:
    """Implied tests first, the compared one last (only that one is negated)."""
    if not isinstance(left, dict):
        return []
    if "payload" in left:
        return payload_tests(left["payload"], values, op)
    if "meta" in left:
        return meta_tests(left["meta"]["key"], values)
    if "ct" in left:
        return ct_tests(left["ct"], values, op)
    if "fib" in left:
        return fib_tests(left["fib"], values)
    if "&" in left:
        return flag_tests(left["&"], values)
    return []


def payload_tests(payload: dict[str, Any], values: list[Any], op: str) -> list[Test]:
    protocol, field = payload.get("protocol"), payload.get("field")
    if protocol in ("ip", "ip6"):
        version = 4 if protocol == "ip" else 6
        if field in ("saddr", "daddr"):
            return [NfProto(version), Addr("src" if field == "saddr" else "dst", v.nets(values))]
        if field in ("protocol", "nexthdr"):
            return [NfProto(version), Proto(frozenset(proto_number(x) for x in values))]
    if field in ("sport", "dport") and (protocol in L4 or protocol == "th"):
        number = L4.get(str(protocol))
        implied: list[Test] = [Proto(frozenset({number}))] if number else []
        port = Port("sport" if field == "sport" else "dport", v.port_ranges(values, op), number)
        return [*implied, port]
    if protocol in ("icmp", "icmpv6") and field == "type":
        version = 4 if protocol == "icmp" else 6
        types = [IcmpType(version, v.icmp_type(value, version)) for value in values]
        number = PROTOCOLS[protocol]
        one_of = types[0] if len(types) == 1 else AnyOf(tuple((Condition(t),) for t in types))
        return [NfProto(version), Proto(frozenset({number})), one_of]
    return []


def proto_number(value: Any) -> int:
    if isinstance(value, int):
        return value
    if value not in PROTOCOLS:
        raise v.UnsupportedValue(f"protocol {value!r}")
    return PROTOCOLS[value]


def meta_tests(key: str, values: list[Any]) -> list[Test]:
    if key in ("iifname", "oifname", "iif", "oif"):
        return [Iface("in" if key.startswith("i") else "out", v.strings(values))]
    if key == "l4proto":
        return [Proto(frozenset(proto_number(x) for x in values))]
    if key == "nfproto":
        versions = {"ipv4": 4, "ipv6": 6}
        if len(values) != 1 or values[0] not in versions:
            raise v.UnsupportedValue(f"meta nfproto {values!r}")
        return [NfProto(versions[values[0]])]
    if key == "mark" and len(values) == 1 and isinstance(values[0], int):
        return [Mark(values[0], 0xFFFFFFFF)]
    if key == "pkttype":
        return [PktType(frozenset(v.strings(values)))]
    return []


def ct_tests(ct: dict[str, Any], values: list[Any], op: str) -> list[Test]:
    key, direction = ct["key"], ct.get("dir")
    if key == "state":
        return [CtState(frozenset(str(x).upper() for x in values))]
    if key == "direction" and len(values) == 1:
        return [CtDir("ORIGINAL" if values[0] == "original" else "REPLY")]
    if direction not in ("original", "reply"):
        return []
    prefix = "orig" if direction == "original" else "repl"
    if key in CT_ADDR_KEYS:
        side = "src" if key.endswith("saddr") else "dst"
        return [CtAddr(f"{prefix}{side}", v.nets(values))]  # type: ignore[arg-type]
    if key in ("proto-src", "proto-dst"):
        side = "src" if key == "proto-src" else "dst"
        return [CtPort(f"{prefix}{side}", v.port_ranges(values, op))]  # type: ignore[arg-type]
    return []


def fib_tests(fib: dict[str, Any], values: list[Any]) -> list[Test]:
    flags = fib.get("flags", [])
    if fib.get("result") != "type" or flags not in (["daddr"], ["saddr"]):
        return []
    types = frozenset(str(x).upper() for x in values)
    return [AddrType("dst" if flags == ["daddr"] else "src", types)]


def flag_tests(operands: list[Any], values: list[Any]) -> list[Test]:
    """`tcp flags & (fin|syn|rst|ack) == syn`."""
    field, mask = operands
    if field != {"payload": {"protocol": "tcp", "field": "flags"}}:
        return []
    mask_set = frozenset(str(x).upper() for x in (mask if isinstance(mask, list) else [mask]))
    comp = frozenset(str(x).upper() for x in values if x)
    return [Proto(frozenset({6})), TcpFlags(mask_set, comp)]
