"""NFLOG statements before each drop, and the named limits they share.

One named limit per direction is one kernel bucket: a flood against many containers
still yields at most the configured rate of records, while the counter on the drop
after it counts every packet. The limits live in the table, so replacing the table
replaces them with whatever rate the policy now says.
"""

from __future__ import annotations

from dockwall.backends.nftables import expr as e
from dockwall.backends.nftables.expr import Json
from dockwall.compile.ir import DropLog, LogDirection
from dockwall.compile.origin import log_prefix

DIRECTIONS: tuple[LogDirection, ...] = ("ingress", "egress", "peers")


def limit_name(direction: LogDirection) -> str:
    return f"log-{direction}"


def limit_objects(log: DropLog | None) -> list[Json]:
    """The named limits, one per logged direction (`rate 20/second burst 50 packets`)."""
    if log is None:
        return []
    found: list[Json] = []
    for direction in DIRECTIONS:
        limit = log.limit(direction)
        if limit is None:
            continue
        body: Json = {
            "family": e.FAMILY,
            "table": e.TABLE,
            "name": limit_name(direction),
            "rate": limit.count,
            "per": limit.unit,
            "burst": limit.burst,
        }
        found.append({"limit": body})
    return found


def log_rules(log: DropLog | None, direction: LogDirection, tag: str) -> list[list[Json]]:
    """The rule to put before a drop, or none when this direction is not logged. Its
    counter (after the limit) counts the records sent, so drops minus records is what
    the limit suppressed, both from the kernel."""
    if log is None or log.limit(direction) is None:
        return []
    record = {"prefix": log_prefix(direction, tag), "group": log.group, "snaplen": log.snaplen}
    return [[{"limit": limit_name(direction)}, e.counter(), {"log": record}]]


def limit_text(body: Json) -> str:
    """A limit's declaration the way plans compare it."""
    return f"rate {body['rate']}/{body.get('per', 'second')} burst {body.get('burst', 0)} packets"
