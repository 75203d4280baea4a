"""Reading table `inet dockwall` back from the kernel, through the runner."""

from __future__ import annotations

import json
from typing import Any

from dockwall.backends.base import RuleCounter
from dockwall.backends.nftables.describe import rule_text
from dockwall.backends.nftables.expr import FAMILY, TABLE, Json
from dockwall.errors import CommandError, DockwallError
from dockwall.runner import Runner

LIST_ARGV = ("nft", "-j", "list", "table", FAMILY, TABLE)
ABSENT = "No such file or directory"
TABLE_KINDS = frozenset({"set", "map", "limit", "chain", "rule"})


def live_objects(runner: Runner) -> list[Json] | None:
    """The table's sets, maps, chains and rules, or None when the table does not exist."""
    result = runner.run(LIST_ARGV, check=False)
    if result.returncode == 0:
        return listing_objects(result.stdout)
    if ABSENT in result.stderr:
        return None
    raise CommandError(result.argv, result.returncode, result.stderr)


def listing_objects(text: str) -> list[Json]:
    """The objects of an `nft -j list` document, without metainfo and the table itself."""
    try:
        document: Any = json.loads(text)
        entries: list[Json] = document["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DockwallError(f"nft printed JSON dockwall cannot read: {exc}") from exc
    return [entry for entry in entries if next(iter(entry), None) in TABLE_KINDS]


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
