"""Named lists (`lists:` of the policy) as nft sets, `except:` and `deny_with: reject`.

Each list is one named set per family, `list-NAME-v4` / `list-NAME-v6`, shared by every
rule naming it: a plain hash set when the list holds only hosts, an interval set when
it holds networks. Both families always exist (an empty set costs nothing), so a list
that gains its first IPv6 entry changes elements only, never a rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from dockwall.backends.base import Change
from dockwall.backends.nftables import expr as e
from dockwall.backends.nftables.expr import Json
from dockwall.compile.ir import AddressSet, Allow, Ruleset
from dockwall.model.state import Network

ADDR_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
IP = {4: "ip", 6: "ip6"}
LIST_PREFIX = "list-"


def list_set_name(name: str, family: int) -> str:
    return f"{LIST_PREFIX}{name}-v{family}"


def element(text: str) -> str | Json:
    """An element text as libnftables JSON: a host bare, a network as a prefix."""
    address, slash, length = text.partition("/")
    return {"prefix": {"addr": address, "len": int(length)}} if slash else text


def list_sets(lists: tuple[AddressSet, ...]) -> list[Json]:
    return [list_set(found, family) for found in lists for family in (4, 6)]


def list_set(found: AddressSet, family: int) -> Json:
    body: Json = {
        "family": e.FAMILY,
        "name": list_set_name(found.name, family),
        "table": e.TABLE,
        "type": ADDR_TYPE[family],
    }
    if found.interval(family):
        body["flags"] = ["interval"]
    elements = found.elements(family)
    if elements:
        body["elem"] = [element(text) for text in elements]
    return {"set": body}


def list_peer_matches(allow: Allow, field: str) -> list[tuple[int, list[Json]]]:
    """One match per list and family: a lookup in that list's set."""
    return [
        (family, [e.match(e.payload(IP[family], field), e.set_ref(list_set_name(name, family)))])
        for name in allow.lists
        for family in (4, 6)
    ]


def except_matches(allow: Allow, family: int, field: str) -> list[Json]:
    """`!=` matches for the carved-out CIDRs and lists of one family (ipBlock.except)."""
    found: list[Json] = []
    mine = [n for n in allow.excepts if n.version == family]
    if mine:
        found.append(e.match(e.payload(IP[family], field), cidr_set(mine), op="!="))
    for name in allow.except_lists:
        ref = e.set_ref(list_set_name(name, family))
        found.append(e.match(e.payload(IP[family], field), ref, op="!="))
    return found


def cidr_set(networks: list[Network]) -> str | Json:
    texts = [element(net_text(n)) for n in networks]
    return texts[0] if len(texts) == 1 else {"set": texts}


def net_text(network: Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def refusal(reject: bool) -> list[list[Json]]:
    """The end of a filter chain: a counted drop, or a reject (TCP reset for TCP, ICMP
    admin-prohibited for the rest, `icmpx` picks ICMP or ICMPv6 by family)."""
    if not reject:
        return [[e.counter(), e.verdict("drop")]]
    return [
        [e.match(e.meta("l4proto"), "tcp"), e.counter(), {"reject": {"type": "tcp reset"}}],
        [e.counter(), {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}],
    ]


def element_text(value: Any) -> str:
    """An element as nft lists it (a host bare, a prefix as address/length), so the
    elements of a list set compare as plain strings, without a view per element."""
    if isinstance(value, dict):
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "range" in value:
            return f"{value['range'][0]}-{value['range'][1]}"
        if "elem" in value:
            return element_text(value["elem"]["val"])
    return str(value)


def is_list_set(obj: Json) -> bool:
    body = obj.get("set")
    return isinstance(body, dict) and str(body.get("name", "")).startswith(LIST_PREFIX)


def bare(ruleset: Ruleset) -> Ruleset:
    """The ruleset with its lists declared but empty: what is rendered, described and
    compared as a table; the elements travel apart, as strings (ListDelta)."""
    lists = tuple(replace(found, v4=(), v6=()) for found in ruleset.lists)
    return replace(ruleset, lists=lists)


@dataclass(frozen=True)
class ListDelta:
    """What changes in one list set: elements to delete and to add. `fresh`: the set is
    new in this load (or declared anew), so every element is added."""

    name: str
    removed: Sequence[str]
    added: Sequence[str]
    size: int
    fresh: bool = False


def difference(name: str, before: frozenset[str], after: Sequence[str]) -> ListDelta | None:
    """The in-place update from `before` to `after`, None if equal (set operations only:
    a million elements on each side)."""
    wanted = frozenset(after)
    if wanted == before:
        return None
    return ListDelta(
        name, tuple(sorted(before - wanted)), tuple(sorted(wanted - before)), len(after)
    )


def list_changes(deltas: list[ListDelta]) -> list[Change]:
    """One line per list and family, `list feeds: +120 -45`, never the elements."""
    return [
        Change(
            family=e.FAMILY,
            op="add",
            where=f"set {d.name}",
            text=(
                f"list {d.name.removeprefix(LIST_PREFIX).rsplit('-v', 1)[0]}: "
                f"+{len(d.added)} -{len(d.removed)} "
                f"({'loaded' if d.fresh else 'in place'}, {d.size} entries)"
            ),
        )
        for d in deltas
    ]


def load_timeout(deltas: list[ListDelta]) -> float:
    """Seconds a load may take: a minute, plus one for every 2,000 list elements it
    changes (a million: about 5 s on a quiet machine, several times that on a busy one)."""
    return 60.0 + sum(len(d.added) + len(d.removed) for d in deltas) / 2000


def update_script(deltas: list[ListDelta]) -> str:
    """The elements to change, as nft script lines: deletions first, so an added network
    never collides with an element on its way out. One line per set, however long:
    nft parses a million elements of one `add element` fastest."""
    lines = [
        f"delete element {e.FAMILY} {e.TABLE} {d.name} {{ {', '.join(d.removed)} }}"
        for d in deltas
        if d.removed
    ]
    lines += [
        f"add element {e.FAMILY} {e.TABLE} {d.name} {{ {', '.join(d.added)} }}"
        for d in deltas
        if d.added
    ]
    return "\n".join([*lines, ""])
