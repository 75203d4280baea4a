"""Named lists as ipset sets, `except:` as negated set matches, `deny_with: reject`.

A named list is one `hash:net` set per family its rules use, `dwl-NAME-v4` /
`dwl-NAME-v6`, shared by every rule naming it. hash:net even for a list of hosts: a set
that gains its first network must keep its name (the rules name it), and ipset swaps
only sets of one type; with hosts alone hash:net does one lookup, as hash:ip would. Its
contents change in place (`add`/`del` of the difference, or a refill swapped in when it
outgrows its size), so no rule is rewritten and every other rule keeps its counters.

`except` CIDRs always go into a set of their own (iptables takes one `-s` per rule), so
every carve-out is a `-m set ! --match-set` match, next to those of excepted lists.
"""

from __future__ import annotations

import re

from dockwall.backends.iptables.detect import Family
from dockwall.backends.iptables.ipsets import IpSet, set_for
from dockwall.backends.iptables.setread import LIST_PREFIX
from dockwall.compile.ir import AddressSet, Allow

LIST_MATCH = re.compile(rf"--match-set ({LIST_PREFIX}\S+)")
REJECT_ICMP = {"ipv4": "icmp-admin-prohibited", "ipv6": "icmp6-adm-prohibited"}


def number(family: Family) -> int:
    return 4 if family == "ipv4" else 6


def list_set_name(name: str, family: Family) -> str:
    return f"{LIST_PREFIX}{name}-v{number(family)}"


def list_match(name: str, family: Family, direction: str, negated: bool = False) -> str:
    bang = "! " if negated else ""
    return f"-m set {bang}--match-set {list_set_name(name, family)} {direction}"


def except_match(allow: Allow, family: Family, direction: str, sets: dict[str, IpSet]) -> str:
    """The negated matches of one family's carve-outs; the CIDRs' set joins `sets`."""
    parts: list[str] = []
    mine = [n for n in allow.excepts if n.version == number(family)]
    if mine:
        found = set_for(family, mine)
        sets[found.name] = found
        parts.append(f"-m set ! --match-set {found.name} {direction}")
    parts += [list_match(name, family, direction, negated=True) for name in allow.except_lists]
    return " ".join(parts)


def list_ipsets(
    lists: tuple[AddressSet, ...], family: Family, chains: dict[str, list[str]]
) -> dict[str, IpSet]:
    """The named lists' sets of one family that its rules name, members in `ipset save`'s
    spelling already. A set no rule names is left out: it would do nothing, and nothing
    would prove it ours (a list set is ours by our chains' matches against it), so it
    could never be tidied away."""
    if not lists:
        return {}
    named = {
        word
        for rules in chains.values()
        for rule in rules
        if f"--match-set {LIST_PREFIX}" in rule
        for word in LIST_MATCH.findall(rule)
    }
    found = {
        list_set_name(found.name, family): IpSet(
            list_set_name(found.name, family),
            family,
            found.elements(number(family)),
            listed=True,
            digest=found.digest,
            change=found.change,
        )
        for found in lists
    }
    return {name: wanted for name, wanted in found.items() if name in named}


def refusal(reject: bool, family: Family) -> list[str]:
    """A filter's last rules: DROP, or REJECT (TCP reset, else ICMP admin-prohibited)."""
    if not reject:
        return ["-j DROP"]
    return [
        "-p tcp -j REJECT --reject-with tcp-reset",
        f"-j REJECT --reject-with {REJECT_ICMP[family]}",
    ]
