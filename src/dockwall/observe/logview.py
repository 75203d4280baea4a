"""Choosing and wording journal entries for `dockwall logs`: pure, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SPAN = re.compile(r"(?P<count>\d+)\s*(?P<unit>s|m|h|d)")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DIRECTIONS = ("ingress", "egress", "peers")


def parse_since(text: str, now: float) -> float:
    """`10m`, `30s`, `2h`, `1d`, or an ISO 8601 time (with a zone)."""
    found = SPAN.fullmatch(text.strip())
    if found:
        return now - int(found["count"]) * SECONDS[found["unit"]]
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a span like 10m, 2h, 1d nor an ISO 8601 time"
        ) from None
    if stamp.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add one, e.g. {text}+00:00")
    return stamp.timestamp()


@dataclass(frozen=True)
class Selection:
    since: float | None = None
    container: str | None = None
    direction: str | None = None

    def wants(self, entry: dict[str, Any]) -> bool:
        """Loss and suppression markers are kept under a container filter: they say
        the picture is incomplete, whichever container it is about."""
        stamp = entry.get("ts")
        if self.since is not None and (not isinstance(stamp, int | float) or stamp < self.since):
            return False
        if self.direction is not None and entry.get("direction", self.direction) != self.direction:
            return False
        if self.container is not None and entry.get("kind") == "drop":
            return self.container in (entry.get("container"), entry.get("remote_container"))
        return entry.get("kind") in ("drop", "lost", "suppressed")


def endpoint(address: Any, port: Any) -> str:
    text = str(address)
    if port is None:
        return text
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def columns(entry: dict[str, Any]) -> list[str]:
    """time, what, container, remote, why: one aligned line per entry."""
    stamp = str(entry.get("time", ""))[11:23]
    kind = entry.get("kind")
    if kind == "lost":
        count = entry.get("count")
        what = f"{count} record(s)" if count is not None else "an unknown number of records"
        return [stamp, "LOST", "", "", f"{what} lost (log buffer overrun or sequence gap)"]
    if kind == "suppressed":
        return [
            stamp,
            "SUPPRESSED",
            str(entry.get("direction", "")),
            "",
            f"{entry.get('count')} more drop(s) counted by the kernel, over the log rate",
        ]
    container = entry.get("container") or f"({entry.get('address')})"
    project = entry.get("project")
    if project:
        container += f" [{project}/{entry.get('service') or ''}]"
    remote = f"{endpoint(entry.get('remote'), entry.get('port'))}/{entry.get('proto')}"
    if entry.get("remote_container"):
        remote += f" ({entry['remote_container']})"
    if entry.get("fqdn"):
        remote += f" ({entry['fqdn']})"
    direction = str(entry.get("direction", "")).upper()
    return [stamp, direction, container, remote, str(entry.get("policy"))]
