"""An explanation as text for people (rich) and as JSON for scripts."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.console import Console
from rich.markup import escape

from dockwall.explain.simulate import Explanation

COLOURS = {"accept": "green", "drop": "red", "unknown": "yellow"}


def to_json(explanation: Explanation) -> str:
    data = asdict(explanation)
    return json.dumps(data, indent=2)


def headline(e: Explanation) -> str:
    if e.verdict == "accept":
        return "connection opens: the first packet and the reply both pass"
    if e.verdict == "drop" and e.failed == "reply":
        return "connection fails: the first packet passes but the REPLY is dropped"
    if e.verdict == "drop":
        return "connection fails: the first packet is dropped"
    return "cannot tell: the verdict depends on something dockwall cannot evaluate"


def print_explanation(console: Console, e: Explanation) -> None:
    colour = COLOURS[e.verdict]
    console.print(f"[bold {colour}]{e.verdict.upper()}[/] {escape(e.packet)}: {headline(e)}")
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
