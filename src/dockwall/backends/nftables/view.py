"""A table reduced to what matters for comparison: declarations, elements and rule text.

nft prints back some things differently from how they were loaded (interval elements
may come back merged or as ranges, counters carry values, handles appear), so rendered
and live tables are compared through this view, never as raw JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockwall.backends.nftables.describe import rule_text, value_text, verdict_text
from dockwall.backends.nftables.droplog import limit_text
from dockwall.backends.nftables.expr import Json
from dockwall.backends.nftables.intervals import collapsed, element_networks, network_text
from dockwall.model.state import Network

ADDRESS_TYPES = frozenset({"ipv4_addr", "ipv6_addr"})


@dataclass(frozen=True)
class SetView:
    """A set or map: `declaration` is its type line, `elements` one text per element."""

    kind: str
    declaration: str
    elements: frozenset[str]


@dataclass(frozen=True)
class ChainView:
    """`hook` is the base-chain line (None for a regular chain); rules in order."""

    hook: str | None
    rules: tuple[str, ...]


@dataclass(frozen=True)
class TableView:
    sets: Mapping[str, SetView] = field(default_factory=dict)
    chains: Mapping[str, ChainView] = field(default_factory=dict)


def table_view(objects: Iterable[Json]) -> TableView:
    """The view of a table given as its objects (rendered, or listed by `nft -j`)."""
    sets: dict[str, SetView] = {}
    hooks: dict[str, str | None] = {}
    rules: dict[str, list[str]] = {}
    for obj in objects:
        (kind, body), *_ = obj.items()
        if kind in ("set", "map"):
            sets[body["name"]] = set_view(kind, body)
        elif kind == "limit":
            sets[body["name"]] = SetView(kind, limit_text(body), frozenset())
        elif kind == "chain":
            hooks[body["name"]] = hook_text(body)
            rules.setdefault(body["name"], [])
        elif kind == "rule":
            rules.setdefault(body["chain"], []).append(rule_text(body["expr"]))
    chains = {name: ChainView(hooks.get(name), tuple(rules[name])) for name in rules}
    return TableView(sets, chains)


def set_view(kind: str, body: Json) -> SetView:
    """Sets with timeouts are filled at run time (learned addresses): their elements are
    not part of what an apply decides, so they are never compared."""
    raw: list[Any] = body.get("elem", [])
    if "timeout" in body.get("flags", []):
        raw = []
    if kind == "map":
        elements = {f"{value_text(k)} : {map_value_text(v)}" for k, v in raw}
    elif is_address_interval_set(body):
        elements = {network_text(n) for n in interval_networks(raw)}
    else:
        elements = {value_text(v) for v in raw}
    return SetView(kind, declaration_text(kind, body), frozenset(elements))


def is_address_interval_set(body: Json) -> bool:
    kind = body.get("type")
    return isinstance(kind, str) and kind in ADDRESS_TYPES and "interval" in body.get("flags", [])


def map_value_text(value: Any) -> str:
    return verdict_text(value) if isinstance(value, dict) else value_text(value)


def declaration_text(kind: str, body: Json) -> str:
    key = body["type"] if isinstance(body["type"], str) else " . ".join(body["type"])
    text = f"type {key} : {body['map']}" if kind == "map" else f"type {key}"
    flags = body.get("flags", [])
    return f"{text}; flags {','.join(flags)}" if flags else text


def interval_networks(raw: Iterable[Any]) -> list[Network]:
    """Elements as the networks they cover, merged: the same coverage gives the same text."""
    networks: list[Network] = []
    for element in raw:
        networks += element_networks(element)
    return collapsed(networks)


def hook_text(body: Json) -> str | None:
    if "hook" not in body:
        return None
    return (
        f"type {body['type']} hook {body['hook']} priority {body['prio']}; "
        f"policy {body.get('policy', 'accept')}"
    )
