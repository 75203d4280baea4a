"""Reading table `inet dockwall` back from the kernel, through the runner.

The hot paths (plan, apply, the agent's drift check, status) never read the named
lists' elements: `nft -t -j list ruleset` prints every table without the elements of
named sets in milliseconds, where `nft -j list table` fetches all of them (seconds and
hundreds of MB for a million-entry list). The elements of dockwall's other named sets
(dispatch maps, learned fqdn addresses, bridges) are then read set by set: nft 1.0.6
fails a file of several different `list set` commands, so each is its own call, a few
at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dockwall.backends.base import RuleCounter
from dockwall.backends.nftables.describe import rule_text
from dockwall.backends.nftables.expr import FAMILY, TABLE, Json
from dockwall.errors import CommandError, DockwallError
from dockwall.runner import Runner

TERSE_ARGV = ("nft", "-t", "-j", "list", "ruleset")
TABLE_KINDS = frozenset({"set", "map", "limit", "chain", "rule"})
SET_KINDS = frozenset({"set", "map"})
READERS = 4


def table_objects(runner: Runner, skip: Callable[[Json], bool]) -> list[Json] | None:
    """The table as `live_objects` gives it, but the sets `skip` says are read without
    their elements (the named lists): two cheap nft calls and one per other set."""
    declared = terse_objects(runner)
    if declared is None:
        return None
    wanted = [i for i, obj in enumerate(declared) if is_set(obj) and not skip(obj)]
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        full = list(pool.map(lambda i: set_object(runner, declared[i]), wanted))
    for index, obj in zip(wanted, full, strict=True):
        declared[index] = obj
    return declared


def terse_objects(runner: Runner) -> list[Json] | None:
    """Our table's objects, named sets and maps without elements; None when absent."""
    entries = listing_entries(nft_output(runner, TERSE_ARGV))
    ours = [e for e in entries if table_of(e) == (FAMILY, TABLE)]
    if not any("table" in e for e in ours):
        return None
    return [e for e in ours if next(iter(e), None) in TABLE_KINDS]


def table_of(entry: Json) -> tuple[Any, Any] | None:
    (kind, body), *_ = entry.items()
    if not isinstance(body, dict):
        return None
    name = body.get("name") if kind == "table" else body.get("table")
    return body.get("family"), name


def is_set(obj: Json) -> bool:
    return next(iter(obj), None) in SET_KINDS


def set_object(runner: Runner, declared: Json) -> Json:
    """One set or map of our table with its elements."""
    (kind, body), *_ = declared.items()
    listed = nft_output(runner, ("nft", "-j", "list", kind, FAMILY, TABLE, body["name"]))
    found = [e for e in listing_objects(listed) if kind in e]
    if len(found) != 1:
        raise DockwallError(f"nft listed {len(found)} objects for {kind} {body['name']}")
    return found[0]


def nft_output(runner: Runner, argv: tuple[str, ...], timeout: float = 60.0) -> str:
    result = runner.run(argv, check=False, timeout=timeout)
    if result.returncode != 0:
        raise CommandError(result.argv or list(argv), result.returncode, result.stderr)
    return result.stdout


def listing_entries(text: str) -> list[Json]:
    try:
        document: Any = json.loads(text)
        entries: list[Json] = document["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DockwallError(f"nft printed JSON dockwall cannot read: {exc}") from exc
    return entries


def listing_objects(text: str) -> list[Json]:
    """The objects of an `nft -j list` document, without metainfo and the table itself."""
    return [e for e in listing_entries(text) if next(iter(e), None) in TABLE_KINDS]


def rule_counters(objects: list[Json]) -> list[RuleCounter]:
    """What each counted rule has matched since the table was last replaced."""
    found: list[RuleCounter] = []
    for obj in objects:
        body = obj.get("rule")
        if body is None:
            continue
        for statement in body["expr"]:
            if "counter" in statement:
                count = statement["counter"]
                found.append(
                    RuleCounter(
                        family=FAMILY,
                        where=f"chain {body['chain']}",
                        text=rule_text(body["expr"]),
                        packets=int(count.get("packets", 0)),
                        bytes=int(count.get("bytes", 0)),
                    )
                )
    return found
