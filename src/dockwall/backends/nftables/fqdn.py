"""Egress by name in table `inet dockwall`: learned-address sets, the DNS redirect.

- One set per pattern and family (`fq-<hash>-v4`), `flags timeout`: the forwarder adds
  each learned address with its own timeout and the kernel forgets it on expiry. The
  name is a hash of the pattern, so the same pattern keeps the same set across applies.
- Sets with `flags timeout` are dynamic: plans compare their declaration, never their
  elements, and the replace transaction carries the live elements over (`carried`)
  with the time they have left, so an apply never forgets what was learned.
- Chain `dns-nat` (nat, prerouting, just before Docker's DNAT) redirects the clients'
  udp/tcp 53, whatever the destination, to the forwarder on the host; input accepts what
  was redirected (our egress chains would otherwise drop a container's packet to the
  host), and forward drops the clients' port 853 (DNS over TLS, DNS over QUIC).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from dockwall.backends.nftables import expr as e
from dockwall.backends.nftables.expr import Json
from dockwall.compile.ir import Dns, Ruleset

SET_PREFIX = "fq-"
CLIENTS = "dns-clients"
NAT_CHAIN = "dns-nat"
NAT_PRIORITY = -101
DNS_PORT = 53
DOT_PORT = 853
IP = {4: "ip", 6: "ip6"}
ADDR_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
MIN_CARRIED = 1


def set_name(pattern: str, family: int) -> str:
    digest = hashlib.sha256(pattern.encode()).hexdigest()[:12]
    return f"{SET_PREFIX}{digest}-v{family}"


def pattern_matches(patterns: Iterable[str], field: str) -> list[tuple[int, list[Json]]]:
    """(family, match) per pattern and family: the peer address in that pattern's set."""
    return [
        (family, [e.match(e.payload(IP[family], field), e.set_ref(set_name(p, family)))])
        for p in patterns
        for family in (4, 6)
    ]


def dynamic_set(name: str, family: int, elements: list[Json]) -> Json:
    body: Json = {
        "family": e.FAMILY,
        "name": name,
        "table": e.TABLE,
        "type": ADDR_TYPE[family],
        "flags": ["timeout"],
    }
    if elements:
        body["elem"] = elements
    return {"set": body}


def element(address: str, seconds: int) -> Json:
    return {"elem": {"val": address, "timeout": max(MIN_CARRIED, seconds)}}


def dns_sets(dns: Dns, carried: dict[str, list[Json]]) -> list[Json]:
    """The clients' address sets and one learned set per pattern and family."""
    found: list[Json] = []
    for family in (4, 6):
        clients = sorted({str(c.address) for c in dns.clients if c.address.version == family})
        body: Json = {
            "family": e.FAMILY,
            "name": f"{CLIENTS}-v{family}",
            "table": e.TABLE,
            "type": ADDR_TYPE[family],
        }
        if clients:
            body["elem"] = clients
        found.append({"set": body})
    for pattern in dns.patterns:
        for family in (4, 6):
            name = set_name(pattern, family)
            found.append(dynamic_set(name, family, carried.get(name, [])))
    return found


def l4(protocols: list[str]) -> Json:
    return e.match(e.meta("l4proto"), {"set": protocols})


def client_match(family: int) -> Json:
    return e.match(e.payload(IP[family], "saddr"), e.set_ref(f"{CLIENTS}-v{family}"))


def nat_rules(dns: Dns) -> list[list[Json]]:
    return [
        [
            client_match(family),
            l4(["tcp", "udp"]),
            e.match(e.payload("th", "dport"), DNS_PORT),
            e.counter(),
            {"redirect": {"port": dns.port}},
        ]
        for family in (4, 6)
    ]


def forward_rules() -> list[list[Json]]:
    """DNS over TLS/QUIC from a client: it would resolve around the forwarder."""
    return [
        [
            client_match(family),
            l4(["tcp", "udp"]),
            e.match(e.payload("th", "dport"), DOT_PORT),
            e.counter(),
            e.verdict("drop"),
        ]
        for family in (4, 6)
    ]


def input_rules(dns: Dns) -> list[list[Json]]:
    """The redirected queries reach the host: accepted before our egress chains see them
    (only packets we redirected: a direct connection to the port is judged as usual)."""
    return [
        [
            l4(["tcp", "udp"]),
            e.match(e.payload("th", "dport"), dns.port),
            e.match(e.ct("status"), "dnat", op="in"),
            e.verdict("accept"),
        ]
    ]


def nat_chain() -> Json:
    return {
        "chain": {
            "family": e.FAMILY,
            "table": e.TABLE,
            "name": NAT_CHAIN,
            "type": "nat",
            "hook": "prerouting",
            "prio": NAT_PRIORITY,
            "policy": "accept",
        }
    }


def wanted(ruleset: Ruleset) -> bool:
    return ruleset.dns is not None


def carried_elements(objects: Iterable[Json]) -> dict[str, list[Json]]:
    """Live elements of our learned sets with the seconds they have left."""
    found: dict[str, list[Json]] = {}
    for obj in objects:
        body = obj.get("set")
        if not body or not str(body.get("name", "")).startswith(SET_PREFIX):
            continue
        for item in body.get("elem", []):
            address, left = element_left(item)
            if address is not None and left > 0:
                found.setdefault(body["name"], []).append(element(address, left))
    return found


def element_left(item: Any) -> tuple[str | None, int]:
    """(address, seconds left) of a listed element; elements without a timeout never
    come from the forwarder and are not carried."""
    if not isinstance(item, dict) or "elem" not in item:
        return None, 0
    inner = item["elem"]
    value = inner.get("val")
    if not isinstance(value, str):
        return None, 0
    expires = inner.get("expires", inner.get("timeout", 0))
    return value, int(expires) if isinstance(expires, int | float) else 0
