"""`dockwall status --swarm`: every node's agent and policy version, on a manager."""

from __future__ import annotations

import json

from rich.markup import escape
from rich.table import Table

from dockwall.commands.report import console
from dockwall.sources.docker_state import connect
from dockwall.sources.swarm_cluster import read_cluster


def swarm_status(as_json: bool) -> int:
    """0 when every node runs the service's current policy version, 1 otherwise."""
    client = connect()
    try:
        report = read_cluster(client)
    finally:
        client.close()
    if as_json:
        console.print_json(json.dumps(report))
        return 0 if report["in_sync"] else 1
    sync = "[green]in sync[/]" if report["in_sync"] else "[yellow]not in sync[/]"
    console.print(
        f"service [bold]{escape(str(report['service']))}[/], policy version "
        f"[bold]{escape(str(report['policy_version']))}[/]: {sync}"
    )
    table = Table("node", "hostname", "address", "role", "availability", "state", "agent",
                  "policy version", "in sync")  # fmt: skip
    for row in report["nodes"]:
        table.add_row(
            *(escape(str(row[key])) for key in ("node", "hostname", "address", "role")),
            *(escape(str(row[key])) for key in ("availability", "state", "agent")),
            escape(row["policy_version"]),
            "yes" if row["in_sync"] else "no",
        )
    console.print(table)
    console.print(f"note: {report['note']}")
    return 0 if report["in_sync"] else 1
