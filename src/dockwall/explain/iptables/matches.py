"""iptables match options (`-s`, `-p`, `-m conntrack --ctstate ...`) into typed tests.

Nearly every option takes exactly one value: its handler gets that value (and the IP
version) and nothing else, so the rule parser can memoise the result. The few that
take none or several read them from a `Cursor` over the rule's tokens. An option the
simulator has no model for becomes `Unsupported` with its text, never dropped:
guessing it away could turn an unknown verdict into a confident wrong one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from dockwall.errors import DockwallError
from dockwall.explain.addresses import parse_net
from dockwall.explain.netfilter import (
    PROTOCOLS,
    Addr,
    AddrRange,
    AddrType,
    CtAddr,
    CtDir,
    CtPort,
    CtState,
    IcmpType,
    Iface,
    Mark,
    Net,
    PktType,
    Port,
    Proto,
    SetMatch,
    TcpFlags,
    Test,
    Unsupported,
)

OPTION_ENDS = frozenset({"-m", "--match", "-j", "-g", "--jump", "--goto"})
# options that change an earlier option of the same match: the fast reader, which sees
# one option at a time, must leave their rules to the token reader
MODIFIERS = frozenset({"--return-nomatch"})
TCP_FLAG_NAMES = frozenset({"SYN", "ACK", "FIN", "RST", "URG", "PSH", "ECE", "CWR"})
CtField = Literal["origsrc", "origdst", "replsrc", "repldst"]


class RulesetParseError(DockwallError):
    """A line iptables-save would never print: the input is not what we think it is."""


ValueHandler = Callable[[str, int], Test | None]


class Cursor:
    """One rule's tokens and the position of the next one, plus the last `-m` module."""

    __slots__ = ("module", "pos", "tokens", "version")

    def __init__(self, tokens: list[str], pos: int, version: int, module: str = "") -> None:
        self.tokens = tokens
        self.pos = pos
        self.version = version
        self.module = module

    def take(self) -> str:
        if self.pos >= len(self.tokens):
            raise RulesetParseError(f"option {self.tokens[self.pos - 1]!r} needs a value")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def take_loose(self) -> list[str]:
        """Values of an option we have no model for: everything up to the next option."""
        values: list[str] = []
        while self.pos < len(self.tokens) and not self.tokens[self.pos].startswith(("-", "!")):
            values.append(self.take())
        return values


def value_handler(module: str, option: str) -> ValueHandler | None:
    """The handler of an option that takes exactly one value, if it is one."""
    return (
        GENERAL_OPTIONS.get(option)
        or VALUE_OPTIONS.get((module, option))
        or VALUE_OPTIONS.get(("*", option))
    )


def parse_other(cursor: Cursor, option: str) -> Test | None:
    """An option without a single value (`--syn`, `--tcp-flags M C`) or one we do not know."""
    handler = CURSOR_OPTIONS.get((cursor.module, option)) or CURSOR_OPTIONS.get(("*", option))
    if handler is not None:
        return handler(cursor)
    values = " ".join(cursor.take_loose())
    return Unsupported(f"-m {cursor.module} {option} {values}".strip())


def protocol_number(name: str) -> int:
    if name.isdigit():
        return int(name)
    number = PROTOCOLS.get(name.lower())
    if number is None:
        raise RulesetParseError(f"unknown protocol {name!r}")
    return number


def proto_test(value: str, _: int) -> Test | None:
    if value.lower() == "all" or value == "0":
        return None
    return Proto(frozenset({protocol_number(value)}))


def nets(value: str) -> tuple[Net, ...]:
    if "," not in value:
        return (parse_net(value),)
    return tuple(parse_net(part) for part in value.split(","))


def addr_test(field: Literal["src", "dst"]) -> ValueHandler:
    return lambda value, _: Addr(field, nets(value))


def iface_test(field: Literal["in", "out"]) -> ValueHandler:
    return lambda value, _: Iface(field, (value,))


GENERAL_OPTIONS: dict[str, ValueHandler] = {
    "-p": proto_test,
    "--protocol": proto_test,
    "-s": addr_test("src"),
    "--source": addr_test("src"),
    "-d": addr_test("dst"),
    "--destination": addr_test("dst"),
    "-i": iface_test("in"),
    "--in-interface": iface_test("in"),
    "-o": iface_test("out"),
    "--out-interface": iface_test("out"),
}


def port_ranges(value: str) -> tuple[tuple[int, int], ...]:
    """`80`, `1000:2000`, `:1023`, `80,443,8000:8100` (multiport)."""
    if value.isdigit():
        port = int(value)
        return ((port, port),)
    ranges: list[tuple[int, int]] = []
    for part in value.split(","):
        low, sep, high = part.partition(":")
        if not sep:
            high = low
        ranges.append((int(low or 0), int(high or 65535)))
    return tuple(ranges)


def port_test(field: Literal["sport", "dport"]) -> ValueHandler:
    return lambda value, _: Port(field, port_ranges(value))


def ct_state(value: str, _: int) -> Test:
    return CtState(frozenset(value.upper().split(",")))


def ct_addr(field: CtField) -> ValueHandler:
    return lambda value, _: CtAddr(field, nets(value))


def ct_port(field: CtField) -> ValueHandler:
    return lambda value, _: CtPort(field, port_ranges(value))


def ct_dir(value: str, _: int) -> Test:
    direction = value.upper()
    if direction == "ORIGINAL":
        return CtDir("ORIGINAL")
    if direction == "REPLY":
        return CtDir("REPLY")
    raise RulesetParseError(f"--ctdir {direction!r}")


def addr_type(field: Literal["src", "dst"]) -> ValueHandler:
    return lambda value, _: AddrType(field, frozenset(value.upper().split(",")))


def icmp_type(value: str, version: int) -> Test:
    type_text, _, code = value.partition("/")
    if not type_text.isdigit():
        return Unsupported(f"icmp type {value}")
    return IcmpType(version, int(type_text), int(code) if code else None)


def mark(value: str, _version: int) -> Test:
    number, _, mask = value.partition("/")
    return Mark(int(number, 0), int(mask, 0) if mask else 0xFFFFFFFF)


def pkt_type(value: str, _: int) -> Test:
    return PktType(frozenset({value.lower()}))


def ip_range(field: Literal["src", "dst"]) -> ValueHandler:
    def build(value: str, _version: int) -> Test:
        low, _, high = value.partition("-")
        first, last = parse_net(low), parse_net(high or low)
        return AddrRange(field, first.version, first.address, last.address)

    return build


def ignore(_value: str, _version: int) -> None:
    return None


VALUE_OPTIONS: dict[tuple[str, str], ValueHandler] = {
    ("*", "--dport"): port_test("dport"),
    ("*", "--destination-port"): port_test("dport"),
    ("*", "--sport"): port_test("sport"),
    ("*", "--source-port"): port_test("sport"),
    ("multiport", "--dports"): port_test("dport"),
    ("multiport", "--destination-ports"): port_test("dport"),
    ("multiport", "--sports"): port_test("sport"),
    ("multiport", "--source-ports"): port_test("sport"),
    ("conntrack", "--ctstate"): ct_state,
    ("state", "--state"): ct_state,
    ("conntrack", "--ctdir"): ct_dir,
    ("conntrack", "--ctorigsrc"): ct_addr("origsrc"),
    ("conntrack", "--ctorigdst"): ct_addr("origdst"),
    ("conntrack", "--ctreplsrc"): ct_addr("replsrc"),
    ("conntrack", "--ctrepldst"): ct_addr("repldst"),
    ("conntrack", "--ctorigsrcport"): ct_port("origsrc"),
    ("conntrack", "--ctorigdstport"): ct_port("origdst"),
    ("conntrack", "--ctreplsrcport"): ct_port("replsrc"),
    ("conntrack", "--ctrepldstport"): ct_port("repldst"),
    ("conntrack", "--ctproto"): proto_test,
    ("addrtype", "--src-type"): addr_type("src"),
    ("addrtype", "--dst-type"): addr_type("dst"),
    ("comment", "--comment"): ignore,
    ("icmp", "--icmp-type"): icmp_type,
    ("icmp6", "--icmpv6-type"): icmp_type,
    ("mark", "--mark"): mark,
    ("pkttype", "--pkt-type"): pkt_type,
    ("iprange", "--src-range"): ip_range("src"),
    ("iprange", "--dst-range"): ip_range("dst"),
}


def tcp_flags(cursor: Cursor) -> Test:
    mask, comp = cursor.take(), cursor.take()
    return TcpFlags(flag_set(mask), flag_set(comp))


def flag_set(text: str) -> frozenset[str]:
    if text == "ALL":
        return TCP_FLAG_NAMES
    if text == "NONE":
        return frozenset()
    return frozenset(text.upper().split(","))


def syn(_: Cursor) -> Test:
    return TcpFlags(frozenset({"FIN", "SYN", "RST", "ACK"}), frozenset({"SYN"}))


def limit_iface(cursor: Cursor) -> Test:
    return Unsupported(f"-m addrtype {cursor.tokens[cursor.pos - 1]}")


def match_set(cursor: Cursor) -> Test:
    """`--match-set NAME src[,dst...]`, and `--return-nomatch` if the same match has it."""
    name, flags = cursor.take(), cursor.take()
    dirs: list[Literal["src", "dst"]] = []
    for flag in flags.split(","):
        if flag not in ("src", "dst"):
            raise RulesetParseError(f"--match-set {name} {flags}: {flag!r} is not src or dst")
        dirs.append("src" if flag == "src" else "dst")
    rest = cursor.tokens[cursor.pos :]
    end = next((i for i, token in enumerate(rest) if token in OPTION_ENDS), len(rest))
    return SetMatch(name, tuple(dirs), "--return-nomatch" in rest[:end])


def no_test(_: Cursor) -> None:
    """Options that change nothing about whether a packet matches (counter updates), or
    that `match_set` has already read (`--return-nomatch`)."""


CURSOR_OPTIONS: dict[tuple[str, str], Callable[[Cursor], Test | None]] = {
    ("*", "--tcp-flags"): tcp_flags,
    ("*", "--syn"): syn,
    ("addrtype", "--limit-iface-in"): limit_iface,
    ("addrtype", "--limit-iface-out"): limit_iface,
    ("set", "--match-set"): match_set,
    ("set", "--return-nomatch"): no_test,
    ("set", "--update-counters"): no_test,
    ("set", "--update-subcounters"): no_test,
}
