"""The replace transaction in nft's own syntax, which nft loads twice as fast as JSON.

`nft -j -f` spends most of a large load in parsing JSON (1,000 containers with a chain
each: 0.67 s for the 6.5 MB JSON document, 0.35 s for the same table as a 1.4 MB script,
nft 1.0.6). The table is still rendered, described and compared as JSON objects; this
module only writes those objects out as a script. It knows exactly the shapes `render`
emits and refuses anything else (NotScriptable), so the caller can fall back to the
JSON document instead of guessing.

Names are written bare (nft 1.0 has no quoted identifiers), so only names that cannot be
read as a keyword pass: the fixed names of the layout and names containing a dash.
Interface names are always quoted strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from dockwall.backends.nftables.describe import VERDICTS
from dockwall.backends.nftables.expr import FAMILY, TABLE, Json
from dockwall.backends.nftables.view import TableView

FIXED_NAMES = frozenset(
    {"forward", "input", "ingress", "egress", "peers", "bridges", "intra", "hosts"}
)
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
ATOM = re.compile(r"[A-Za-z0-9:][A-Za-z0-9:._-]*")
IFNAME = re.compile(r"[^\"\\\x00-\x1f\x7f]+")
ADDRESS = re.compile(r"[0-9A-Fa-f:.]+")
RULE = re.compile(
    r'(?:[A-Za-z0-9 :./@{},_-]|!=|"[A-Za-z0-9_.-]+\*"|(?<=log prefix )"[A-Za-z0-9_.:+-]+")+'
)
WHERE = f"{FAMILY} {TABLE}"


class NotScriptable(ValueError):
    """An object outside what `render` emits: load the JSON document instead."""


def script(commands: Sequence[Json], view: TableView) -> str:
    """The commands of `render.render` (add, delete, add table, then objects) as a script.

    Chains, sets and maps are declared first, one line each, then every chain's rules
    follow in one `table { chain { ... } }` block, which nft reads faster than a line
    per rule. A rule is written as its text in `view`, the view of these same commands:
    that text is nft syntax already for every rule `render` emits, and describing each
    rule a second time would double the cost of a plan. A rule text with anything nft
    would read differently (a quote other than around an interface wildcard like
    "br-*", JSON for an unknown expression) is refused.
    """
    lines = []
    rules = 0
    for command in commands:
        body = command.get("add", {}).get("rule")
        if body is None:
            lines.append(command_text(command))
        else:
            rules += 1
    if rules != sum(len(chain.rules) for chain in view.chains.values()):
        raise NotScriptable("the view is not the view of these commands")
    lines.append(f"table {WHERE} {{")
    for chain, found in view.chains.items():
        if found.rules:
            lines.append(f"chain {name(chain)} {{")
            for text in found.rules:
                if not RULE.fullmatch(text):
                    raise NotScriptable(f"rule {text!r}")
                lines.append(text)
            lines.append("}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def keeping_script(
    live: Sequence[Json], commands: Sequence[Json], view: TableView, kept: set[str]
) -> str:
    """The replace transaction that keeps the sets named in `kept` (the named lists, a
    million elements each) with their elements: every rule flushed, every other live
    object deleted, then the table's objects added as `script` writes them, but the
    kept sets. One transaction still: the kernel swaps the old rules for the new ones
    in one commit, and the kept sets are never without their elements."""
    lines = [f"add table {WHERE}", f"flush table {WHERE}"]
    chains = []
    for obj in live:
        (kind, body), *_ = obj.items()
        if kind == "chain":
            chains.append(f"delete chain {WHERE} {name(body['name'])}")
        elif kind in ("set", "map", "limit") and body["name"] not in kept:
            lines.append(f"delete {kind} {WHERE} {name(body['name'])}")
    rest = [c for c in commands if "add" in c and not is_kept(c["add"], kept)]
    return "\n".join([*lines, *chains, ""]) + script(rest, view)


def is_kept(obj: Json, kept: set[str]) -> bool:
    """A table command, or a set that stays: not part of the objects to add."""
    return "table" in obj or ("set" in obj and obj["set"]["name"] in kept)


def command_text(command: Json) -> str:
    (verb, obj), *rest = command.items()
    if rest or verb not in ("add", "delete"):
        raise NotScriptable(f"command {command!r}")
    (kind, body), *rest = obj.items()
    if rest:
        raise NotScriptable(f"object {obj!r}")
    if kind == "table":
        if body != {"family": FAMILY, "name": TABLE}:
            raise NotScriptable(f"table {body!r}")
        return f"{verb} table {WHERE}"
    if verb != "add" or body.get("family") != FAMILY or body.get("table") != TABLE:
        raise NotScriptable(f"object {obj!r}")
    if kind == "chain":
        return chain_text(body)
    if kind in ("set", "map"):
        return set_text(kind, body)
    if kind == "limit":
        return limit_text(body)
    raise NotScriptable(f"object {obj!r}")


def limit_text(body: Json) -> str:
    rate, per, burst = (int(body["rate"]), atom(body["per"]), int(body["burst"]))
    return f"add limit {WHERE} {name(body['name'])} {{ rate {rate}/{per} burst {burst} packets; }}"


def name(text: Any) -> str:
    if not isinstance(text, str) or not IDENTIFIER.fullmatch(text):
        raise NotScriptable(f"name {text!r}")
    if "-" not in text and text not in FIXED_NAMES:
        raise NotScriptable(f"name {text!r} might read as a keyword")
    return text


def chain_text(body: Json) -> str:
    head = f"add chain {WHERE} {name(body['name'])}"
    if "hook" not in body:
        return head
    kind, hook, policy = (atom(body[key]) for key in ("type", "hook", "policy"))
    prio = int(body["prio"])
    return f"{head} {{ type {kind} hook {hook} priority {prio}; policy {policy}; }}"


def set_text(kind: str, body: Json) -> str:
    types = body["type"] if isinstance(body["type"], list) else [body["type"]]
    key = " . ".join(atom(t) for t in types)
    parts = [f"type {key} : {atom(body['map'])}" if kind == "map" else f"type {key}"]
    if body.get("flags"):
        parts.append("flags " + ",".join(atom(f) for f in body["flags"]))
    elements = body.get("elem", [])
    if elements:
        writers = [writer(t) for t in types]
        if kind == "map":
            if body["map"] != "verdict":
                raise NotScriptable(f"map {body['name']!r} of {body['map']!r}")
            texts = [f"{element_text(k, writers)} : {verdict_text(v)}" for k, v in elements]
        else:
            texts = [element_text(element, writers) for element in elements]
        parts.append("elements = { " + ", ".join(texts) + " }")
    return f"add {kind} {WHERE} {name(body['name'])} {{ " + "; ".join(parts) + "; }"


def element_text(element: Any, writers: list[Callable[[Any], str]]) -> str:
    if len(writers) == 1:
        return writers[0](element)
    parts = element.get("concat") if isinstance(element, dict) else None
    if not isinstance(parts, list) or len(parts) != len(writers):
        raise NotScriptable(f"element {element!r}")
    return " . ".join([write(part) for write, part in zip(writers, parts, strict=True)])


def ifname_text(value: Any) -> str:
    if not isinstance(value, str) or not IFNAME.fullmatch(value):
        raise NotScriptable(f"interface {value!r}")
    return f'"{value}"'


def verdict_text(value: Any) -> str:
    """A map's data: a verdict, with the chain it goes to."""
    if not isinstance(value, dict) or len(value) != 1:
        raise NotScriptable(f"verdict {value!r}")
    (kind, body), *_ = value.items()
    if kind in VERDICTS and body is None:
        return str(kind)
    if kind in ("goto", "jump") and isinstance(body, dict):
        return f"{kind} {name(body['target'])}"
    raise NotScriptable(f"verdict {value!r}")


def writer(kind: str) -> Callable[[Any], str]:
    """How elements of one type are written: interface names always quoted."""
    if kind == "ifname":
        return ifname_text
    if kind in ("ipv4_addr", "ipv6_addr"):
        return address_text
    if kind in ("inet_proto", "inet_service"):
        return atom
    raise NotScriptable(f"type {kind!r}")


def address_text(value: Any) -> str:
    if isinstance(value, str) and ADDRESS.fullmatch(value):
        return value
    if isinstance(value, dict) and "elem" in value:
        timeout = value["elem"].get("timeout")
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise NotScriptable(f"element {value!r}")
        return f"{address_text(value['elem']['val'])} timeout {timeout}s"
    if isinstance(value, dict) and "prefix" in value:
        return f"{address_text(value['prefix']['addr'])}/{int(value['prefix']['len'])}"
    if isinstance(value, dict) and "range" in value:
        first, last = value["range"]
        return f"{address_text(first)}-{address_text(last)}"
    raise NotScriptable(f"address {value!r}")


def atom(value: Any) -> str:
    if isinstance(value, bool):
        raise NotScriptable(f"value {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and ATOM.fullmatch(value):
        return value
    raise NotScriptable(f"value {value!r}")
