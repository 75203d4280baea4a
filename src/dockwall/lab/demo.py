"""`dockwall lab demo`: the README's first command, end to end in a throwaway lab.

It shows the trap and the fix with real packets: the matrix of plain Docker (every
published port open to everyone, every container free to connect anywhere), then the
example policy applied by the real `dockwall apply`, then the matrix again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from dockwall.lab import matrix as m
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober

EXAMPLE = Path(__file__).with_name("example-policy.yaml")


def show(console: Console, prober: Prober, heading: str) -> None:
    console.rule(heading)
    result = m.measure(prober)
    console.print(m.table("Ingress: internet -> published ports", result.ingress))
    console.print(
        m.table(
            "Egress: containers -> internet and the Docker host", result.egress, by_destination=True
        )
    )


def run_demo(console: Console, name: str, keep: bool) -> None:
    lab = Lab(name)
    if lab.exists():
        lab.down()
    with console.status(f"bringing lab {name} up (namespaces, dockerd, containers)"):
        lab.up()
    try:
        prober = Prober(lab)
        show(console, prober, "Plain Docker: who can reach what")
        console.rule("The policy")
        console.print(EXAMPLE.read_text(), highlight=False, markup=False)
        for command in ("plan", "apply"):
            result = lab.host.run([sys.executable, "-m", "dockwall", command, "-f", str(EXAMPLE)])
            console.print(f"$ dockwall {command} -f {EXAMPLE.name}", style="bold")
            console.print(result.stdout + result.stderr, highlight=False, markup=False)
        show(console, prober, "With dockwall: who can reach what")
    finally:
        if keep:
            console.print(
                f"lab {name} kept: dockwall lab exec --name {name} -- ...; "
                f"dockwall lab down --name {name}"
            )
        else:
            lab.down()
