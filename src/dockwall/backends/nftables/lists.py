"""Named lists (`lists:` of the policy) as nft sets, `except:` and `deny_with: reject`.

Each list is one named set per family, `list-NAME-v4` / `list-NAME-v6`, shared by every
rule naming it: a plain hash set when the list holds only hosts, an interval set when
it holds networks. Both families always exist (an empty set costs nothing), so a list
that gains its first IPv6 entry changes elements only, never a rule.
"""

from __future__ import annotations

from dockwall.backends.nftables import expr as e
from dockwall.backends.nftables.expr import Json
from dockwall.compile.ir import AddressSet, Allow
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
