"""How plans, warnings and results look on a terminal and in --json."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.markup import escape

from dockwall.backends.base import Plan
from dockwall.terminal import make_console

console = make_console()
err = make_console(stderr=True)


def warn(messages: Iterable[str]) -> None:
    for message in messages:
        err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def counts(plans: Sequence[Plan]) -> tuple[int, int]:
    changes = [c for p in plans for c in p.changes]
    return sum(c.op == "add" for c in changes), sum(c.op == "remove" for c in changes)


def print_plan(plans: Sequence[Plan]) -> None:
    """Grouped by family and chain, + and - like a diff, so a review takes seconds."""
    current: tuple[str, str, str] | None = None
    for plan in plans:
        for change in plan.changes:
            group = (plan.backend, change.family, change.where)
            if group != current:
                console.print(f"[bold]{plan.backend} {change.family} {escape(change.where)}[/]")
                current = group
            sign, colour = ("+", "green") if change.op == "add" else ("-", "red")
            console.print(
                f"  [{colour}]{sign} {escape(change.text)}[/]", highlight=False, soft_wrap=True
            )
    added, removed = counts(plans)
    if added or removed:
        console.print(f"Plan: {added} to add, {removed} to remove.")
    else:
        console.print("No changes: the live firewall matches the policy.")


def plan_json(plans: Sequence[Plan], warnings: Sequence[str], extra: dict[str, Any]) -> str:
    return json.dumps(
        {
            **extra,
            "in_sync": all(p.in_sync for p in plans),
            "changes": [
                {
                    "backend": p.backend,
                    "family": c.family,
                    "op": c.op,
                    "where": c.where,
                    "text": c.text,
                }
                for p in plans
                for c in p.changes
            ],
            "warnings": list(warnings),
        },
        indent=2,
    )
