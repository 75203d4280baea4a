"""iptables targets (`-j`, `-g`) into simulator actions.

Targets that only observe or tweak headers the simulator ignores (LOG, TCPMSS, ...)
continue to the next rule. Anything that could change where a packet goes and that
we do not model becomes `UnknownAction`, so a verdict that depends on it says so.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from dockwall.explain.addresses import parse_address
from dockwall.explain.netfilter import (
    Accept,
    Action,
    Continue,
    Drop,
    Goto,
    Jump,
    Nat,
    Return,
    SetMark,
    UnknownAction,
)

PASS_THROUGH = frozenset(
    {"LOG", "NFLOG", "ULOG", "TCPMSS", "CHECKSUM", "TOS", "DSCP", "TTL", "HL", "TRACE", "AUDIT"}
) | frozenset({"CLASSIFY", "ECN", "IDLETIMER", "LED", "NFQUEUE-BYPASS-OFF"})
SIMPLE: dict[str, Action] = {"ACCEPT": Accept(), "DROP": Drop(), "RETURN": Return()}
DEFAULT_REJECT = {4: "icmp-port-unreachable", 6: "icmp6-port-unreachable"}


def no_target() -> Action:
    """A rule without -j only counts packets."""
    return Continue("counter")


def options(tokens: list[str]) -> dict[str, list[str]]:
    """`--to-destination 1.2.3.4:80 --random` -> {"--to-destination": [...], "--random": []}."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for token in tokens:
        if token.startswith("--"):
            current = found.setdefault(token, [])
        else:
            current.append(token)
    return found


def parse_target(
    option: str, name: str, rest: list[str], version: int, chains: Collection[str]
) -> Action:
    """`chains` are the table's chains: a name among them is a jump, never a target."""
    if option in ("-g", "--goto"):
        return Goto(name)
    if name in chains:
        return Jump(name)
    simple = SIMPLE.get(name)
    if simple is not None:
        return simple
    if name in PASS_THROUGH:
        return Continue(name)
    args = options(rest)
    if name == "REJECT":
        return Drop(reject=" ".join(args.get("--reject-with", [])) or DEFAULT_REJECT[version])
    if name in ("DNAT", "SNAT"):
        key = "--to-destination" if name == "DNAT" else "--to-source"
        return nat_target(name, args.get(key, []), version)
    if name == "MASQUERADE":
        return (
            Nat("masquerade")
            if "--to-ports" not in args
            else UnknownAction("MASQUERADE --to-ports")
        )
    if name == "REDIRECT":
        ports = args.get("--to-ports", [])
        if len(ports) == 1 and ports[0].isdigit():
            return Nat("redirect", port=int(ports[0]))
        return UnknownAction("REDIRECT " + " ".join(ports))
    if name == "MARK":
        return mark_target(args)
    return UnknownAction(" ".join([name, *rest]))


def nat_target(name: str, values: list[str], version: int) -> Action:
    """Only a single address and a single port can be simulated faithfully."""
    if len(values) != 1:
        return UnknownAction(f"{name} {' '.join(values)}")
    text = values[0]
    port: int | None = None
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif version == 4 and ":" in text:
        address, _, port_text = text.partition(":")
    else:
        address, port_text = text, ""
    if "-" in address or "-" in port_text:
        return UnknownAction(f"{name} --to {text} (a range)")
    if port_text:
        port = int(port_text)
    kind: Literal["dnat", "snat"] = "dnat" if name == "DNAT" else "snat"
    if not address:
        return Nat(kind, None, port) if kind == "dnat" else UnknownAction(f"{name} {text}")
    return Nat(kind, parse_address(address)[1], port)


def mark_target(args: dict[str, list[str]]) -> Action:
    for key in ("--set-xmark", "--set-mark"):
        if args.get(key):
            value, _, mask = args[key][0].partition("/")
            return SetMark(int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF)
    return UnknownAction("MARK " + " ".join(f"{k} {' '.join(v)}" for k, v in args.items()))
