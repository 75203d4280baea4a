"""A typed ruleset that iptables-save text and `nft -j` JSON both parse into.

Both front ends produce the same conditions and actions, so the simulator has one
evaluation loop and an iptables rule and its nftables twin explain themselves alike.
Addresses are stored as integers with a mask: a rule test is then two integer
operations, which keeps a 10,000-rule chain cheap to walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    """A frozen dataclass to the type checker, a plain slotted one at run time.

    Nothing changes these objects after parsing (the parsers share one `Condition`
    among many rules), and mypy says so for every assignment. A frozen dataclass
    enforces it at run time too, but its `__init__` goes through `object.__setattr__`
    and costs 0.5-1 us per object: a third of the parse time of a 10,000-rule chain.
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


Family = Literal["ip", "ip6", "inet", "arp", "bridge", "netdev"]
Origin = Literal["iptables-nft", "iptables-legacy", "nftables"]
Hook = Literal["prerouting", "input", "forward", "output", "postrouting", "ingress"]
ChainType = Literal["filter", "nat", "route"]

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51}
PROTOCOLS |= {"icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "udplite": 136}
PROTOCOL_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}


@record
class Net:
    """An address block of one family; `version` keeps IPv4 and IPv6 ints apart."""

    version: int
    address: int
    mask: int

    def contains(self, version: int, address: int) -> bool:
        return version == self.version and address & self.mask == self.address


@record
class Addr:
    """`-s`/`-d`, `ip saddr`: the packet's current source or destination address."""

    field: Literal["src", "dst"]
    nets: tuple[Net, ...]


@record
class AddrRange:
    """`-m iprange`: an inclusive range of addresses."""

    field: Literal["src", "dst"]
    version: int
    low: int
    high: int


@record
class Iface:
    """`-i`/`-o`, `iifname`/`oifname`; a trailing `+` or `*` is a prefix wildcard."""

    field: Literal["in", "out"]
    names: tuple[str, ...]


@record
class Proto:
    """`-p`, `meta l4proto`, `ip protocol`, `ip6 nexthdr`."""

    numbers: frozenset[int]


@record
class NfProto:
    """`meta nfproto`: the IP version inside an inet table."""

    version: int


@record
class Port:
    """`--dport`, `--sports`, `tcp dport`: inclusive ranges; packets without ports never match."""

    field: Literal["sport", "dport"]
    ranges: tuple[tuple[int, int], ...]
    protocol: int | None = None


@record
class CtState:
    """`--ctstate`/`--state`, `ct state`; the virtual states DNAT and SNAT included."""

    states: frozenset[str]


@record
class CtDir:
    """`--ctdir`, `ct direction`."""

    direction: Literal["ORIGINAL", "REPLY"]


@record
class CtAddr:
    """`--ctorigdst`, `ct original ip daddr`: an address of the connection's tuples."""

    field: Literal["origsrc", "origdst", "replsrc", "repldst"]
    nets: tuple[Net, ...]


@record
class CtPort:
    """`--ctorigdstport`, `ct original proto-dst`: a port of the connection's tuples."""

    field: Literal["origsrc", "origdst", "replsrc", "repldst"]
    ranges: tuple[tuple[int, int], ...]


@record
class AddrType:
    """`-m addrtype`, `fib daddr type`: LOCAL, UNICAST, BROADCAST, MULTICAST, ..."""

    field: Literal["src", "dst"]
    types: frozenset[str]


@record
class IcmpType:
    """`--icmp-type`, `--icmpv6-type`, `icmp type`: type and optional code."""

    version: int
    type: int
    code: int | None = None


@record
class TcpFlags:
    """`--tcp-flags MASK COMP`, `--syn`, `tcp flags & (..) == ..`."""

    mask: frozenset[str]
    comp: frozenset[str]


@record
class Mark:
    """`-m mark --mark V/M`, `meta mark`."""

    value: int
    mask: int


@record
class PktType:
    """`-m pkttype`, `meta pkttype`: every packet dockwall simulates is unicast."""

    types: frozenset[str]


@record
class SetMatch:
    """`-m set --match-set NAME src,dst`: the packet's fields, one per direction (address,
    then port), looked up in an ipset of the host; `!` is the condition's negation."""

    name: str
    dirs: tuple[Literal["src", "dst"], ...]
    return_nomatch: bool = False

    @property
    def text(self) -> str:
        extra = " --return-nomatch" if self.return_nomatch else ""
        return f"-m set --match-set {self.name} {','.join(self.dirs)}{extra}"


@record
class Unsupported:
    """A match the simulator cannot evaluate; it makes the verdict `unknown` if it matters."""

    text: str


@record
class AnyOf:
    """nftables concatenations (`ip saddr . tcp dport @allowed`): a packet matches when
    every test of at least one element holds."""

    options: tuple[tuple[Condition, ...], ...]


Test = (
    Addr | AddrRange | Iface | Proto | NfProto | Port | CtState | CtDir | CtAddr | CtPort
    | AddrType | IcmpType | TcpFlags | Mark | PktType | SetMatch | AnyOf | Unsupported
)  # fmt: skip


@record
class Condition:
    """One test of a rule, possibly negated (`! -s`, `!=`)."""

    test: Test
    negate: bool = False


@record
class Accept:
    pass


@record
class Drop:
    """DROP and REJECT: the packet does not get through either way. `reject` is what a
    REJECT answers with (`tcp-reset`, `icmp-port-unreachable`, `icmpx port-unreachable`),
    None for a silent DROP: the client sees an error at once, or nothing at all."""

    reject: str | None = None


@record
class Return:
    pass


@record
class Jump:
    chain: str


@record
class Goto:
    chain: str


@record
class Continue:
    """LOG, counter, comment-only rules: the packet goes on to the next rule."""

    name: str


@record
class Nat:
    """DNAT/SNAT/MASQUERADE/REDIRECT; ends the nat chain like ACCEPT.

    `address` None means "the interface's own address" (MASQUERADE, REDIRECT).
    """

    kind: Literal["dnat", "snat", "masquerade", "redirect"]
    address: int | None = None
    port: int | None = None


@record
class SetMark:
    """MARK --set-xmark, `meta mark set`: changes the mark and goes on."""

    value: int
    mask: int


@record
class Vmap:
    """nftables verdict map: the first entry whose condition holds gives the action."""

    entries: tuple[tuple[Condition, Action], ...]


@record
class UnknownAction:
    """A target the simulator cannot model: traversal stops with `unknown` if reached."""

    text: str


Action = Accept | Drop | Return | Jump | Goto | Continue | Nat | SetMark | Vmap | UnknownAction


@record
class Rule:
    """A rule as the user wrote it (`text`) plus what it means to the simulator."""

    conditions: tuple[Condition, ...]
    action: Action
    text: str
    effects: tuple[SetMark, ...] = ()


@record
class BaseHook:
    """Where a base chain attaches: netfilter hook, priority and default policy."""

    hook: Hook
    priority: int
    type: ChainType
    policy: Literal["accept", "drop"] = "accept"


class PendingRules(Protocol):
    """A chain's rules not parsed yet: their count is known, the parse happens on demand."""

    def __len__(self) -> int: ...

    def parse(self) -> list[Rule]: ...


class Chain:
    """A chain and its rules. An iptables chain may keep its rule lines unparsed until
    `rules` is first read: a packet enters few of a big host's chains, and parsing
    dominates the cost of `explain`."""

    __slots__ = ("_pending", "_rules", "base", "name")

    def __init__(
        self,
        name: str,
        rules: list[Rule] | None = None,
        base: BaseHook | None = None,
        pending: PendingRules | None = None,
    ) -> None:
        self.name = name
        self.base = base
        self._rules: list[Rule] = [] if rules is None else rules
        self._pending = pending

    @property
    def rules(self) -> list[Rule]:
        if self._pending is not None:
            self._rules = self._pending.parse()
            self._pending = None
        return self._rules

    @property
    def parsed(self) -> bool:
        return self._pending is None

    def rule_count(self) -> int:
        """Without parsing: counting rules must not cost what reading them does."""
        return len(self._pending) if self._pending is not None else len(self._rules)

    def __repr__(self) -> str:
        state = "" if self._pending is None else ", unparsed"
        return f"Chain({self.name!r}, {self.rule_count()} rules{state}, base={self.base!r})"


@dataclass
class Table:
    """One table of one family and origin; `chains` keeps the order they were listed in."""

    family: Family
    name: str
    origin: Origin
    chains: dict[str, Chain] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.origin == "nftables":
            return f"nft {self.family} {self.name}"
        tool = "iptables" if self.family == "ip" else "ip6tables"
        suffix = "-legacy" if self.origin == "iptables-legacy" else ""
        return f"{tool}{suffix} {self.name}"

    def rule_count(self) -> int:
        return sum(chain.rule_count() for chain in self.chains.values())
