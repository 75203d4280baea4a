"""`dockwall graph`: who may reach what on this host, as SVG or Graphviz DOT."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from dockwall.commands.options import DEFAULT, MaxBytesOption, PolicyOption
from dockwall.engine import read_inputs
from dockwall.observe.graph import build, dot, svg


def graph(
    policy: PolicyOption = DEFAULT,
    format_: Annotated[
        Literal["svg", "dot"],
        typer.Option("--format", help="svg (a picture) or dot (for Graphviz)."),
    ] = "svg",
    max_policy_bytes: MaxBytesOption = None,
) -> None:
    """Write the picture of who may reach what to stdout: sources, published ports,
    containers and egress destinations, allowed paths solid and denied ones dashed.

    Drawn from the policy compiled against the live host (Docker's containers now), the
    same picture the agent's page shows; nothing is changed. Names and labels are
    escaped, so the SVG is safe to embed.
    """
    inputs = read_inputs(policy, max_policy_bytes)
    picture = build(inputs.compiled.ruleset, inputs.state)
    typer.echo(svg(picture) if format_ == "svg" else dot(picture), nl=False)
