"""iptables-save / ip6tables-save text into the typed model.

Every table is read, whoever wrote its rules. A match or target the simulator has no
model for is kept as `Unsupported`/`UnknownAction` with its text, never dropped:
guessing it away could turn an unknown verdict into a confident wrong one.
"""

from __future__ import annotations

import gc
import shlex
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from dockwall.errors import DockwallError
from dockwall.explain import iptables_targets as targets
from dockwall.explain.addresses import parse_net
from dockwall.explain.model import (
    PROTOCOLS,
    Addr,
    AddrRange,
    AddrType,
    BaseHook,
    Chain,
    Condition,
    CtAddr,
    CtDir,
    CtPort,
    CtState,
    Family,
    IcmpType,
    Iface,
    Mark,
    Origin,
    PktType,
    Port,
    Proto,
    Rule,
    Table,
    TcpFlags,
    Test,
    Unsupported,
)

BUILTIN_HOOKS: dict[tuple[str, str], BaseHook] = {
    ("raw", "PREROUTING"): BaseHook("prerouting", -300, "filter"),
    ("raw", "OUTPUT"): BaseHook("output", -300, "filter"),
    ("mangle", "PREROUTING"): BaseHook("prerouting", -150, "filter"),
    ("mangle", "INPUT"): BaseHook("input", -150, "filter"),
    ("mangle", "FORWARD"): BaseHook("forward", -150, "filter"),
    ("mangle", "OUTPUT"): BaseHook("output", -150, "route"),
    ("mangle", "POSTROUTING"): BaseHook("postrouting", -150, "filter"),
    ("nat", "PREROUTING"): BaseHook("prerouting", -100, "nat"),
    ("nat", "INPUT"): BaseHook("input", 100, "nat"),
    ("nat", "OUTPUT"): BaseHook("output", -100, "nat"),
    ("nat", "POSTROUTING"): BaseHook("postrouting", 100, "nat"),
    ("filter", "INPUT"): BaseHook("input", 0, "filter"),
    ("filter", "FORWARD"): BaseHook("forward", 0, "filter"),
    ("filter", "OUTPUT"): BaseHook("output", 0, "filter"),
    ("security", "INPUT"): BaseHook("input", 50, "filter"),
    ("security", "FORWARD"): BaseHook("forward", 50, "filter"),
    ("security", "OUTPUT"): BaseHook("output", 50, "filter"),
}
TCP_FLAG_NAMES = frozenset({"SYN", "ACK", "FIN", "RST", "URG", "PSH", "ECE", "CWR"})


MEMO: dict[tuple[str, str, str, bool, int], Condition | None] = {}
MEMO_LIMIT = 200_000
MULTI_VALUED = frozenset({"--syn", "--tcp-flags", "--limit-iface-in", "--limit-iface-out"})


class RulesetParseError(DockwallError):
    """A line iptables-save would never print: the input is not what we think it is."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Parsing allocates tens of thousands of acyclic objects; the cyclic collector's
    passes over them cost a third of the parse time and can never free anything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_iptables_save(text: str, version: int, origin: Origin) -> list[Table]:
    """All tables in one iptables-save (version 4) or ip6tables-save (version 6) dump."""
    with gc_paused():
        return parse_tables(text, version, origin)


def parse_tables(text: str, version: int, origin: Origin) -> list[Table]:
    family: Family = "ip" if version == 4 else "ip6"
    tables: list[Table] = []
    table: Table | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("*"):
                table = Table(family, line[1:], origin)
                tables.append(table)
            elif line == "COMMIT":
                table = None
            elif table is None:
                raise RulesetParseError(f"{line!r} outside of a table")
            elif line.startswith(":"):
                add_chain(table, line)
            else:
                add_rule(table, line, version)
        except DockwallError as exc:
            raise RulesetParseError(
                f"{table.label if table else family} line {number}: {exc}"
            ) from exc
    return tables


def add_chain(table: Table, line: str) -> None:
    """`:NAME POLICY [p:b]`; built-in chains become base chains with their hook."""
    name, policy = line[1:].split()[:2]
    base = BUILTIN_HOOKS.get((table.name, name))
    if base is not None and policy in ("ACCEPT", "DROP"):
        base = BaseHook(
            base.hook, base.priority, base.type, "drop" if policy == "DROP" else "accept"
        )
    table.chains[name] = Chain(name, base=base)


def tokenize(line: str) -> list[str]:
    """Quotes appear only around comments and log prefixes; split fast when there are none."""
    tokens = shlex.split(line) if '"' in line or "'" in line else line.split()
    if tokens and tokens[0].startswith("[") and tokens[0].endswith("]"):
        tokens = tokens[1:]
    return tokens


def add_rule(table: Table, line: str, version: int) -> None:
    tokens = tokenize(line)
    if len(tokens) < 2 or tokens[0] != "-A":
        raise RulesetParseError(f"expected `-A CHAIN ...`, got {line!r}")
    chain = table.chains.get(tokens[1])
    if chain is None:
        raise RulesetParseError(f"rule for undeclared chain {tokens[1]!r}")
    text = line[line.index("-A") :]
    chain.rules.append(RuleParser(tokens, version, table.chains).parse(text))


class RuleParser:
    """Walks one rule's tokens left to right, as iptables itself does."""

    def __init__(self, tokens: list[str], version: int, chains: Collection[str]) -> None:
        self.tokens = tokens
        self.chains = chains
        self.pos = 2
        self.version = version
        self.module = ""
        self.conditions: list[Condition] = []

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

    def parse(self, text: str) -> Rule:
        negate = False
        while self.pos < len(self.tokens):
            option = self.take()
            if option == "!":
                negate = True
                continue
            if option in ("-j", "-g", "--jump", "--goto"):
                action = targets.parse_target(
                    option, self.take(), self.tokens[self.pos :], self.version, self.chains
                )
                return Rule(tuple(self.conditions), action, text)
            condition = self.condition(option, negate)
            if condition is not None:
                self.conditions.append(condition)
            negate = False
        return Rule(tuple(self.conditions), targets.no_target(), text)

    def condition(self, option: str, negate: bool) -> Condition | None:
        """Options with one value are memoised: real rulesets repeat `-p tcp`, `-i docker0`,
        `--ctstate ...` thousands of times, and building each anew dominates parse time."""
        if not self.single_valued(option):
            test = self.parse_option(option)
            return None if test is None else Condition(test, negate)
        value = self.tokens[self.pos] if self.pos < len(self.tokens) else ""
        key = (self.module, option, value, negate, self.version)
        if key not in MEMO:
            test = self.parse_option(option)
            condition = None if test is None else Condition(test, negate)
            if len(MEMO) >= MEMO_LIMIT:
                return condition
            MEMO[key] = condition
        else:
            self.pos += 1
        return MEMO[key]

    def single_valued(self, option: str) -> bool:
        if option in GENERAL_OPTIONS:
            return True
        if option in MULTI_VALUED:
            return False
        return (self.module, option) in MODULE_OPTIONS or ("*", option) in MODULE_OPTIONS

    def parse_option(self, option: str) -> Test | None:
        general = GENERAL_OPTIONS.get(option)
        if general is not None:
            return general(self, self.take())
        if option in ("-m", "--match"):
            self.module = self.take()
            return None
        handler = MODULE_OPTIONS.get((self.module, option)) or MODULE_OPTIONS.get(("*", option))
        if handler is not None:
            return handler(self)
        values = " ".join(self.take_loose())
        return Unsupported(f"-m {self.module} {option} {values}".strip())


def protocol_number(name: str) -> int:
    if name.isdigit():
        return int(name)
    number = PROTOCOLS.get(name.lower())
    if number is None:
        raise RulesetParseError(f"unknown protocol {name!r}")
    return number


def proto_test(_: RuleParser, value: str) -> Test | None:
    if value.lower() == "all" or value == "0":
        return None
    return Proto(frozenset({protocol_number(value)}))


def addr_test(field: str) -> Callable[[RuleParser, str], Test]:
    def build(_: RuleParser, value: str) -> Test:
        nets = tuple(parse_net(part) for part in value.split(","))
        return Addr("src" if field == "src" else "dst", nets)

    return build


def iface_test(field: str) -> Callable[[RuleParser, str], Test]:
    def build(_: RuleParser, value: str) -> Test:
        return Iface("in" if field == "in" else "out", (value,))

    return build


GENERAL_OPTIONS: dict[str, Callable[[RuleParser, str], Test | None]] = {
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
    ranges: list[tuple[int, int]] = []
    for part in value.split(","):
        low, sep, high = part.partition(":")
        if not sep:
            high = low
        ranges.append((int(low or 0), int(high or 65535)))
    return tuple(ranges)


def port_option(field: str) -> Callable[[RuleParser], Test]:
    def build(parser: RuleParser) -> Test:
        return Port("sport" if field == "sport" else "dport", port_ranges(parser.take()))

    return build


def tcp_flags(parser: RuleParser) -> Test:
    mask, comp = parser.take(), parser.take()
    return TcpFlags(flag_set(mask), flag_set(comp))


def flag_set(text: str) -> frozenset[str]:
    if text == "ALL":
        return TCP_FLAG_NAMES
    if text == "NONE":
        return frozenset()
    return frozenset(text.upper().split(","))


def syn(_: RuleParser) -> Test:
    return TcpFlags(frozenset({"FIN", "SYN", "RST", "ACK"}), frozenset({"SYN"}))


def ct_state(parser: RuleParser) -> Test:
    return CtState(frozenset(parser.take().upper().split(",")))


def ct_addr(field: str) -> Callable[[RuleParser], Test]:
    def build(parser: RuleParser) -> Test:
        nets = tuple(parse_net(part) for part in parser.take().split(","))
        return CtAddr(field, nets)  # type: ignore[arg-type]

    return build


def ct_port(field: str) -> Callable[[RuleParser], Test]:
    def build(parser: RuleParser) -> Test:
        return CtPort(field, port_ranges(parser.take()))  # type: ignore[arg-type]

    return build


def ct_dir(parser: RuleParser) -> Test:
    value = parser.take().upper()
    if value not in ("ORIGINAL", "REPLY"):
        raise RulesetParseError(f"--ctdir {value!r}")
    return CtDir("ORIGINAL" if value == "ORIGINAL" else "REPLY")


def addr_type(field: str) -> Callable[[RuleParser], Test]:
    def build(parser: RuleParser) -> Test:
        return AddrType(
            "src" if field == "src" else "dst", frozenset(parser.take().upper().split(","))
        )

    return build


def icmp_type(parser: RuleParser) -> Test:
    value = parser.take()
    type_text, _, code = value.partition("/")
    if not type_text.isdigit():
        return Unsupported(f"icmp type {value}")
    return IcmpType(parser.version, int(type_text), int(code) if code else None)


def mark(parser: RuleParser) -> Test:
    value, _, mask = parser.take().partition("/")
    return Mark(int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF)


def pkt_type(parser: RuleParser) -> Test:
    return PktType(frozenset({parser.take().lower()}))


def ip_range(field: str) -> Callable[[RuleParser], Test]:
    def build(parser: RuleParser) -> Test:
        low, _, high = parser.take().partition("-")
        first, last = parse_net(low), parse_net(high or low)
        return AddrRange(
            "src" if field == "src" else "dst", first.version, first.address, last.address
        )

    return build


def ignore(parser: RuleParser) -> None:
    parser.take()


def limit_iface(parser: RuleParser) -> Test:
    return Unsupported(f"-m addrtype {parser.tokens[parser.pos - 1]}")


MODULE_OPTIONS: dict[tuple[str, str], Callable[[RuleParser], Test | None]] = {
    ("*", "--dport"): port_option("dport"),
    ("*", "--destination-port"): port_option("dport"),
    ("*", "--sport"): port_option("sport"),
    ("*", "--source-port"): port_option("sport"),
    ("*", "--tcp-flags"): tcp_flags,
    ("*", "--syn"): syn,
    ("multiport", "--dports"): port_option("dport"),
    ("multiport", "--destination-ports"): port_option("dport"),
    ("multiport", "--sports"): port_option("sport"),
    ("multiport", "--source-ports"): port_option("sport"),
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
    ("conntrack", "--ctproto"): lambda p: proto_test(p, p.take()),
    ("addrtype", "--src-type"): addr_type("src"),
    ("addrtype", "--dst-type"): addr_type("dst"),
    ("addrtype", "--limit-iface-in"): limit_iface,
    ("addrtype", "--limit-iface-out"): limit_iface,
    ("comment", "--comment"): ignore,
    ("icmp", "--icmp-type"): icmp_type,
    ("icmp6", "--icmpv6-type"): icmp_type,
    ("mark", "--mark"): mark,
    ("pkttype", "--pkt-type"): pkt_type,
    ("iprange", "--src-range"): ip_range("src"),
    ("iprange", "--dst-range"): ip_range("dst"),
}
