"""An explanation as text for people (rich) and as JSON for scripts."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.markup import escape

from dockwall.explain.connection import Connection
from dockwall.explain.simulate import Explanation

COLOURS = {"accept": "green", "drop": "red", "unknown": "yellow"}
CONNECTION_COLOURS = {"open": "green", "refused": "red", "rejected": "red", "dropped": "red"}
INTERNAL = ("delivered", "reject", "undecided")


def to_json(explanation: Explanation, conn: Connection) -> str:
    """`connection` is the one-word answer; `connection_detail` says why, in words."""
    data: dict[str, Any] = {"connection": conn.result, "connection_detail": asdict(conn)}
    del data["connection_detail"]["result"]
    data |= {k: v for k, v in asdict(explanation).items() if k not in INTERNAL}
    return json.dumps(data, indent=2)


def headline(e: Explanation) -> str:
    if e.verdict == "accept":
        return "the first packet and the reply both pass the firewall"
    how = "rejected" if e.reject else "dropped"
    if e.verdict == "drop" and e.failed == "reply":
        return f"the first packet passes but the REPLY is {how}"
    if e.verdict == "drop":
        return f"the first packet is {how}"
    return "the verdict depends on something dockwall cannot evaluate"


def print_explanation(console: Console, e: Explanation, conn: Connection) -> None:
    colour = CONNECTION_COLOURS.get(conn.result, "yellow")
    console.print(f"[bold {colour}]{conn.result}[/]: {escape(conn.reason)}", soft_wrap=True)
    console.print(
        f"verdict [bold {COLOURS[e.verdict]}]{e.verdict.upper()}[/] {escape(e.packet)}: "
        + headline(e),
        soft_wrap=True,
    )
    direction = ""
    for step in e.path:
        if step.direction != direction:
            direction = step.direction
            title = e.packet if direction == "original" else (e.reply or "reply")
            console.print(f"\n[bold]{direction} packet[/] {escape(title)}")
        where = f"[cyan]{step.hook:<11}[/] {escape(step.where)}"
        if step.rule is None:
            console.print(f"  {where}: {escape(step.action)}")
        else:
            console.print(
                f"  {where}: [dim]{escape(step.rule)}[/] -> [bold]{escape(step.action)}[/]"
            )
    for item in e.unknown:
        console.print(f"[yellow]cannot evaluate:[/] {escape(item)}")
    for note in e.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
