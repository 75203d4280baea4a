"""Rule texts in the one form iptables-save prints them, for both sides of a plan's diff.

The kernel keeps a rule as matches and a target, not as text; iptables-save prints it
back in its own spelling: addresses with their prefix length (`/32`, `/128`), a `/0`
as no address match at all, masks as lengths, protocol numbers as names, the implicit
`-m tcp` written out, `80:80` as `80`, ICMP type names as numbers, conntrack states in
kernel bit order, and the base matches (-s -d -i -o -p) first, in that order. Plans
compare `canonical(rendered)` with `canonical(live)`, so a rule that is in force never
shows as a change because dockwall happened to spell it another way.

A rule canonical() cannot read (a foreign rule added by hand with an option dockwall
never writes) is kept as it is, word for word: it still shows up in the diff.
"""

from __future__ import annotations

import functools
import ipaddress
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

BASE_ORDER = ("-s", "-d", "-i", "-o", "-p", "-f")
LONG_BASE = {
    "--source": "-s",
    "--src": "-s",
    "--destination": "-d",
    "--dst": "-d",
    "--in-interface": "-i",
    "--out-interface": "-o",
    "--protocol": "-p",
    "--fragment": "-f",
    "--match": "-m",
    "--jump": "-j",
    "--goto": "-g",
}
PROTOCOL_NAMES = {
    "6": "tcp",
    "17": "udp",
    "1": "icmp",
    "58": "ipv6-icmp",
    "icmpv6": "ipv6-icmp",
    "all": "",
    "0": "",
}
IMPLICIT_MATCH = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "ipv6-icmp": "icmp6"}
CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
ICMP_TYPES = {
    "echo-reply": "0",
    "destination-unreachable": "3",
    "echo-request": "8",
    "time-exceeded": "11",
}
ICMPV6_TYPES = {
    "destination-unreachable": "1",
    "packet-too-big": "2",
    "time-exceeded": "3",
    "echo-request": "128",
    "echo-reply": "129",
    "router-solicitation": "133",
    "router-advertisement": "134",
    "neighbour-solicitation": "135",
    "neighbor-solicitation": "135",
    "neighbour-advertisement": "136",
    "neighbor-advertisement": "136",
}
PORT_OPTIONS = frozenset(
    {"--dport", "--sport", "--destination-port", "--source-port", "--ctorigdstport",
     "--ctorigsrcport", "--ctrepldstport", "--ctreplsrcport"}
)  # fmt: skip
PORT_ALIASES = {"--destination-port": "--dport", "--source-port": "--sport"}
LIST_PORT_OPTIONS = frozenset({"--dports", "--sports", "--ports"})


class Unreadable(ValueError):
    """A rule text outside what canonical() knows; it is then compared as written."""


@dataclass
class Option:
    """One option with its `!` and arguments, e.g. `! -i br0` or `--ctdir ORIGINAL`."""

    name: str
    args: list[str] = field(default_factory=list)
    negated: bool = False

    def words(self) -> list[str]:
        return [*(["!"] if self.negated else []), self.name, *self.args]


@dataclass
class Parsed:
    base: dict[str, Option] = field(default_factory=dict)
    matches: list[tuple[str, list[Option]]] = field(default_factory=list)
    target: list[Option] = field(default_factory=list)


@functools.lru_cache(maxsize=1 << 17)
def canonical(rule: str) -> str:
    """`rule` (the text after `-A CHAIN`) as iptables-save would print it."""
    try:
        return spelled(normalized(parsed(rule)))
    except Unreadable:
        return rule


def parsed(rule: str) -> Parsed:
    try:
        words = shlex.split(rule) if '"' in rule or "'" in rule else rule.split()
    except ValueError as exc:
        raise Unreadable(rule) from exc
    result = Parsed()
    options = grouped(words)
    section: list[Option] | None = None
    for option in options:
        name = option.name
        if name in BASE_ORDER:
            if name in result.base:
                raise Unreadable(rule)
            result.base[name] = option
        elif name == "-m":
            if len(option.args) != 1 or option.negated:
                raise Unreadable(rule)
            section = []
            result.matches.append((option.args[0], section))
        elif name in ("-j", "-g"):
            section = result.target
            section.append(option)
        elif section is not None:
            section.append(option)
        elif name.startswith("--") and "-p" in result.base:
            section = []  # an option of the protocol's implicit match: `-p tcp --dport 80`
            result.matches.append(("", section))
            section.append(option)
        else:
            raise Unreadable(rule)
    return result


def grouped(words: list[str]) -> list[Option]:
    """Words into options: a name, then arguments up to the next name or `!`."""
    options: list[Option] = []
    negated = False
    for word in words:
        if word == "!":
            negated = True
        elif word.startswith("-") and not is_number(word):
            options.append(Option(LONG_BASE.get(word, word), negated=negated))
            negated = False
        elif options and not negated:
            options[-1].args.append(word)
        else:
            raise Unreadable(" ".join(words))
    if negated:
        raise Unreadable(" ".join(words))
    return options


def is_number(word: str) -> bool:
    return word.lstrip("-").isdigit()


def normalized(rule: Parsed) -> Parsed:
    for flag in ("-s", "-d"):
        option = rule.base.get(flag)
        if option is not None:
            option.args = [address(one(option))]
            if option.args[0].endswith("/0") and not option.negated:
                del rule.base[flag]
    protocol = rule.base.get("-p")
    if protocol is not None:
        name = PROTOCOL_NAMES.get(one(protocol).lower(), one(protocol).lower())
        protocol.args = [name]
        if not name and not protocol.negated:
            del rule.base["-p"]
    implicit = IMPLICIT_MATCH.get(protocol.args[0] if protocol else "", "")
    rule.matches = [(name or implicit, options) for name, options in rule.matches]
    for name, options in rule.matches:
        if not name:
            raise Unreadable("an implicit match without a protocol")
        for option in options:
            option.name, option.args = match_option(name, option)
    return rule


def one(option: Option) -> str:
    if len(option.args) != 1:
        raise Unreadable(option.name)
    return option.args[0]


def address(text: str) -> str:
    """`192.0.2.5` -> `192.0.2.5/32`, `10.0.0.0/255.0.0.0` -> `10.0.0.0/8`, host bits off."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise Unreadable(text) from exc
    return f"{network.network_address}/{network.prefixlen}"


def match_option(match: str, option: Option) -> tuple[str, list[str]]:
    name = PORT_ALIASES.get(option.name, option.name)
    fix = VALUE_FIXES.get(name)
    if fix is None:
        return name, option.args
    return name, [fix(one(option), match)]


def port_value(text: str, _: str) -> str:
    first, _sep, last = text.partition(":")
    return first if last in ("", first) else text


def port_list(text: str, _: str) -> str:
    return ",".join(port_value(part, "") for part in text.split(","))


def ct_states(text: str, _: str) -> str:
    given = text.upper().split(",")
    if not set(given) <= set(CT_STATES):
        raise Unreadable(text)
    return ",".join(state for state in CT_STATES if state in given)


def icmp_type(text: str, match: str) -> str:
    names = ICMPV6_TYPES if match == "icmp6" else ICMP_TYPES
    return names.get(text, text)


VALUE_FIXES: dict[str, Callable[[str, str], str]] = {
    **dict.fromkeys(PORT_OPTIONS, port_value),
    **dict.fromkeys(LIST_PORT_OPTIONS, port_list),
    "--ctstate": ct_states,
    "--state": ct_states,
    "--icmp-type": icmp_type,
    "--icmpv6-type": icmp_type,
}


def spelled(rule: Parsed) -> str:
    words: list[str] = []
    for flag in BASE_ORDER:
        if flag in rule.base:
            words += rule.base[flag].words()
    for name, options in rule.matches:
        words += ["-m", name]
        for option in options:
            words += option.words()
    for option in rule.target:
        words += option.words()
    previous = ["", *words[:-1]]
    pairs = zip(previous, words, strict=True)
    return " ".join(quoted(word, always=before in ALWAYS_QUOTED) for before, word in pairs)


ALWAYS_QUOTED = frozenset({"--nflog-prefix", "--log-prefix"})


def quoted(word: str, *, always: bool = False) -> str:
    """iptables-save quotes an argument with spaces (a comment) in double quotes, and a
    log prefix always."""
    if word and not always and not any(ch.isspace() or ch == '"' for ch in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
