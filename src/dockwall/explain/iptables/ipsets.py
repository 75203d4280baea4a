"""The host's ipset sets (`ipset save`), for `-m set --match-set NAME src,dst` rules.

Modelled: `hash:net`, `hash:ip` (with `netmask`/`bitmask`), `hash:net,port` and
`hash:ip,port`, family inet or inet6, `nomatch` entries. A lookup is what the kernel
does: the most specific entry that holds the packet decides, and a `nomatch` one says
no (or yes, under `--return-nomatch`). A set whose type or entries are not understood,
one that `ipset save` did not list, or a host whose sets could not be read at all makes
the match `unknown`; it is never guessed.

`ipset save` is split by set on reading; a set's entries are parsed the first time a
rule looks it up, as a host may hold big sets that no simulated packet ever reaches.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from dockwall.errors import DockwallError
from dockwall.explain.addresses import ALL_ONES, parse_net
from dockwall.explain.netfilter import PROTOCOLS, SetMatch
from dockwall.explain.packet import Packet

ADDRESS_TYPES = {"hash:ip": 1, "hash:net": 1, "hash:ip,port": 2, "hash:net,port": 2}
NOMATCH_TYPES = frozenset({"hash:net", "hash:net,port"})
PORT_PROTOCOLS = frozenset({6, 17, 132, 136})
ICMP_PROTOCOLS = {4: 1, 6: 58}
ICMP_NAMES = {
    1: {"echo-reply": (0, 0), "pong": (0, 0), "echo-request": (8, 0), "ping": (8, 0)},
    58: {"echo-request": (128, 0), "ping": (128, 0), "echo-reply": (129, 0), "pong": (129, 0)},
}
# element key: the masked address, or (masked address, protocol, port)
Key = int | tuple[int, int, int]


class SetParseError(DockwallError):
    """An `ipset save` line this reader does not understand."""


@dataclass
class LiveIpSet:
    """One parsed set. `by_mask` holds the entries by address mask, most specific first,
    each entry mapped to its `nomatch` flag; `problem` says why it cannot be evaluated."""

    name: str
    kind: str
    version: int
    dimension: int
    by_mask: list[tuple[int, dict[Key, bool]]] = field(default_factory=list)
    unparsed: dict[int, str] = field(default_factory=dict)
    problem: str | None = None

    def test(self, match: SetMatch, packet: Packet) -> bool | None:
        """What `-m set --match-set` answers for `packet`; None when it cannot be told."""
        if self.problem is not None:
            return None
        if len(match.dirs) < self.dimension or packet.version != self.version:
            return False  # the kernel's ip_set_test: too few directions, other family
        address = packet.src if match.dirs[0] == "src" else packet.dst
        port: tuple[int, int] | None = None
        if self.dimension == 2:
            if packet.proto in self.unparsed:
                return None
            port = packet_port(packet, match.dirs[1])
            if port is None:
                return False
        for mask, entries in self.by_mask:
            key: Key = address & mask if port is None else (address & mask, *port)
            nomatch = entries.get(key)
            if nomatch is not None:
                if match.return_nomatch and self.kind in NOMATCH_TYPES:
                    return nomatch
                return not nomatch
        return False

    def why(self, packet: Packet) -> str:
        if self.problem is not None:
            return self.problem
        return self.unparsed.get(packet.proto, "")


def packet_port(packet: Packet, direction: str) -> tuple[int, int] | None:
    """(protocol, port) as the kernel keys a packet in a `...,port` set: ICMP as type and
    code, a protocol without ports as port 0."""
    if packet.proto in PORT_PROTOCOLS:
        port = packet.sport if direction == "src" else packet.dport
        return None if port is None else (packet.proto, port)
    if packet.proto in (1, 58):
        if packet.icmp_type is None:
            return None
        return packet.proto, packet.icmp_type << 8  # simulated ICMP has code 0
    return packet.proto, 0


class LiveIpSets:
    """Every set `ipset save` listed, by name; `problem` is why none could be read."""

    def __init__(self, lines: dict[str, list[str]], problem: str | None = None) -> None:
        self.lines = lines
        self.problem = problem
        self.parsed: dict[str, LiveIpSet] = {}

    def get(self, name: str) -> LiveIpSet | None:
        found = self.parsed.get(name)
        if found is None and name in self.lines:
            found = self.parsed[name] = parse_set(name, self.lines.pop(name))
        return found

    def test(self, match: SetMatch, packet: Packet) -> bool | None:
        found = self.get(match.name)
        return None if found is None else found.test(match, packet)

    def why(self, match: SetMatch, packet: Packet) -> str:
        """Why `test` answered None."""
        if self.problem is not None:
            return self.problem
        found = self.get(match.name)
        if found is None:
            return f"`ipset save` does not list a set {match.name!r}"
        return found.why(packet)

    def names(self) -> set[str]:
        return set(self.lines) | set(self.parsed)


NOT_READ = "the host's ipset sets were not read"


def not_read() -> LiveIpSets:
    return LiveIpSets({}, NOT_READ)


def parse_ipset_save(text: str) -> LiveIpSets:
    """Splits `ipset save` output by set (`create NAME ...`, `add NAME ...`)."""
    lines: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split(None, 2)
        if len(words) < 2 or words[0] not in ("create", "add"):
            continue
        if words[0] == "create":
            lines[words[1]] = [line]
        elif words[1] in lines:
            lines[words[1]].append(line)
    return LiveIpSets(lines)


def parse_set(name: str, lines: list[str]) -> LiveIpSet:
    create = words_of(lines[0])
    kind = create[2] if len(create) > 2 else ""
    options = create[3:]
    family = option(options, "family") or "inet"
    version = {"inet": 4, "inet6": 6}.get(family, 0)
    dimension = ADDRESS_TYPES.get(kind, 0)
    ipset = LiveIpSet(name, kind, version, dimension)
    if not dimension:
        ipset.problem = f"ipset {name} is a {kind} set, which explain does not model"
        return ipset
    if not version:
        ipset.problem = f"ipset {name} has family {family}, which explain does not model"
        return ipset
    try:
        fixed_mask = host_mask(kind, options, version)
        by_mask: dict[int, dict[Key, bool]] = {}
        for line in lines[1:]:
            add_entry(ipset, by_mask, words_of(line), fixed_mask)
    except (SetParseError, DockwallError, ValueError) as exc:
        ipset.problem = f"ipset {name}: {exc}"
        return ipset
    ipset.by_mask = sorted(by_mask.items(), key=lambda pair: -pair[0].bit_count())
    return ipset


def words_of(line: str) -> list[str]:
    """Comments are the only quoted values `ipset save` prints."""
    return shlex.split(line) if '"' in line else line.split()


def option(options: list[str], name: str) -> str | None:
    if name in options[:-1]:
        return options[options.index(name) + 1]
    return None


def host_mask(kind: str, options: list[str], version: int) -> int | None:
    """The mask every entry and packet address gets in a `hash:ip` set (`netmask N`,
    `bitmask ADDR`), or None when each entry has its own prefix (`hash:net`)."""
    if not kind.startswith("hash:ip"):
        return None
    netmask, bitmask = option(options, "netmask"), option(options, "bitmask")
    if netmask is not None:
        return prefix_mask(version, int(netmask))
    if bitmask is not None:
        return parse_net(bitmask).address
    return ALL_ONES[version]


def prefix_mask(version: int, length: int) -> int:
    bits = 32 if version == 4 else 128
    if not 0 <= length <= bits:
        raise SetParseError(f"prefix length {length}")
    return (ALL_ONES[version] << (bits - length)) & ALL_ONES[version]


def add_entry(
    ipset: LiveIpSet, by_mask: dict[int, dict[Key, bool]], words: list[str], fixed_mask: int | None
) -> None:
    """`add NAME ELEMENT [nomatch] [timeout N] [packets N bytes N] [comment "..."] ...`"""
    if len(words) < 3:
        raise SetParseError(f"entry without an element: {' '.join(words)!r}")
    element = words[2]
    nomatch = "nomatch" in words[3:]
    address_text, _, port_text = element.partition(",")
    net = parse_net(address_text)
    if net.version != ipset.version:
        raise SetParseError(f"IPv{net.version} entry {element!r} in an IPv{ipset.version} set")
    mask = net.mask if fixed_mask is None else fixed_mask
    key: Key = net.address & mask
    if ipset.dimension == 2:
        port = port_key(port_text, ipset.version)
        if isinstance(port, str):
            protocol = protocol_number(port_text.rpartition(":")[0])
            ipset.unparsed.setdefault(
                protocol, f"ipset {ipset.name}: entry {element!r} ({port}) is not modelled"
            )
            return
        key = (net.address & mask, *port)
    by_mask.setdefault(mask, {})[key] = nomatch


def protocol_number(name: str) -> int:
    number = PROTOCOLS.get(name.lower()) or OTHER_PROTOCOLS.get(name.lower())
    if number is None:
        if name.isdigit():
            return int(name)
        raise SetParseError(f"unknown protocol {name!r}")
    return number


OTHER_PROTOCOLS = {"ipv6-icmp": 58, "icmpv6": 58, "gre": 47, "ipip": 4, "ipv6": 41}


def port_key(text: str, version: int) -> tuple[int, int] | str:
    """`tcp:80`, `udp:53`, `icmp:echo-request`, `icmp:8/0`, `gre:0` into (protocol, port);
    a text naming a protocol but a port this reader cannot tell is returned as the reason."""
    name, sep, value = text.rpartition(":")
    if not sep:
        name, value = "tcp", text  # ipset's default protocol
    protocol = protocol_number(name)
    if protocol in (1, 58):
        if protocol != ICMP_PROTOCOLS[version]:
            return f"{name} in an IPv{version} set"
        if value in ICMP_NAMES[protocol]:
            icmp_type, code = ICMP_NAMES[protocol][value]
            return protocol, icmp_type << 8 | code
        type_text, slash, code_text = value.partition("/")
        if slash and type_text.isdigit() and code_text.isdigit():
            return protocol, int(type_text) << 8 | int(code_text)
        return f"ICMP type {value!r}"
    if not value.isdigit():
        return f"port {value!r}"
    port = int(value)
    return protocol, port if protocol in PORT_PROTOCOLS else 0
