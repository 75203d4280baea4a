"""`dockwall lab demo`: the README's first command, end to end in a throwaway lab.

It shows the trap and the fix with real packets: the matrix of plain Docker (every
published port open to everyone, every container free to connect anywhere), then the
example policy applied by the real `dockwall apply`, then the matrix again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from dockwall.lab import matrix as m
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from dockwall.terminal import rule_width

EXAMPLE = Path(__file__).with_name("example-policy.yaml")


def heading(console: Console, title: str) -> None:
    console.print(Rule(title), width=rule_width(console))


def show(console: Console, prober: Prober, title: str) -> None:
    heading(console, title)
    result = m.measure(prober)
    console.print(m.table("Ingress: internet -> published ports", result.ingress))
    console.print(
        m.table(
            "Egress: containers -> internet and the Docker host", result.egress, by_destination=True
        )
    )


PLAN_LINES = 24


def run(
    console: Console, lab: Lab, args: list[str], shown_path: str, *, shorten: bool = False
) -> None:
    """Runs the real CLI on the lab host and shows it as a terminal would."""
    result = lab.host.run([sys.executable, "-m", "dockwall", *args], check=False)
    words = [shown_path if a.endswith(shown_path) and shown_path else a for a in args]
    console.print(f"$ dockwall {' '.join(words)}", style="bold", highlight=False)
    lines = (result.stdout + result.stderr).splitlines()
    if shorten and len(lines) > PLAN_LINES:
        hidden = len(lines) - PLAN_LINES
        lines = [*lines[: PLAN_LINES - 1], f"  ... {hidden} more lines ...", lines[-1]]
    console.print("\n".join(lines), highlight=False, markup=False)


def run_demo(console: Console, name: str, keep: bool) -> None:
    lab = Lab(name)
    if lab.exists():
        lab.down()
    with console.status(f"bringing lab {name} up (namespaces, dockerd, containers)"):
        lab.up()
    try:
        prober = Prober(lab)
        show(console, prober, "Plain Docker: who can reach what")
        heading(console, "The policy")
        console.print(EXAMPLE.read_text(), highlight=False, markup=False)
        policy = str(EXAMPLE)
        run(console, lab, ["plan", "-f", policy], EXAMPLE.name, shorten=True)
        run(console, lab, ["apply", "-f", policy], EXAMPLE.name)
        show(console, prober, "With dockwall: who can reach what")
        heading(console, "Why? dockwall explain reads the live ruleset")
        run(console, lab, ["explain", "--from", "198.51.100.7", "--to", "host:5432/tcp"], "")
    finally:
        if keep:
            console.print(
                f"lab {name} kept: dockwall lab exec --name {name} -- ...; "
                f"dockwall lab down --name {name}"
            )
        else:
            lab.down()
