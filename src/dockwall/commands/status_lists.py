"""`dockwall status`: the policy's named lists, their size, file, last load and users."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from dockwall.policy import Policy
from dockwall.statedir import state_dir
from dockwall.statefile import LAST_APPLIED, applied_digests


def applied_lists() -> tuple[dict[str, str], str | None]:
    """The list digests of the last applied ruleset, and when it was applied (without
    reading a single element: a list of a million entries costs status nothing)."""
    try:
        when = (state_dir() / LAST_APPLIED).stat().st_mtime
    except OSError:
        return {}, None
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")
    return applied_digests(), stamp


def list_users(policy: Policy) -> dict[str, list[str]]:
    """Which entry and direction names each list: `name=web ingress[0] except`."""
    users: dict[str, list[str]] = {}
    for path, name in policy.list_uses():
        index, direction, number, field = path[1], path[2], path[3], path[4]
        entry = policy.containers[int(index)].describe()
        role = "except" if field == "excepts" else "from" if field == "sources" else "to"
        users.setdefault(name, []).append(f"{entry} {direction}[{number}] {role}")
    return users


def list_rows(policy: Policy) -> list[dict[str, Any]]:
    digests, stamp = applied_lists()
    users = list_users(policy)
    rows = []
    for name, contents in sorted(policy.loaded_lists.items()):
        loaded = stamp if digests.get(name) == contents.digest else None
        rows.append(
            {
                "name": name,
                "file": contents.file,
                "entries": contents.size,
                "ipv4": len(contents.v4),
                "ipv6": len(contents.v6),
                "skipped": contents.skipped,
                "sha256": contents.digest,
                "last_load": loaded,
                "used_by": users.get(name, []),
            }
        )
    return rows


def lists_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("list", "file", "entries", "last load", "used by", title="address lists")
    for row in rows:
        table.add_row(
            escape(row["name"]),
            escape(row["file"]),
            f"{row['entries']} ({row['ipv4']} IPv4, {row['ipv6']} IPv6"
            + (f", {row['skipped']} lines skipped)" if row["skipped"] else ")"),
            row["last_load"] or "not applied yet",
            escape("\n".join(row["used_by"]) or "no rule (not loaded)"),
        )
    return table
