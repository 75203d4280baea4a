"""`dockwall explain`: what the live host really does with one connection."""

from __future__ import annotations

from typing import Annotated

import typer

from dockwall.explain.connection import connection
from dockwall.explain.endpoints import start
from dockwall.explain.live import gather, one_shot
from dockwall.explain.output import print_explanation, to_json
from dockwall.explain.simulate import explain_connection
from dockwall.explain.sockets import read_listeners
from dockwall.runner import SubprocessRunner
from dockwall.sources.docker_state import connect
from dockwall.terminal import make_console

EXIT_CODES = {"accept": 0, "drop": 3, "unknown": 4}


def explain(
    source: Annotated[str, typer.Option("--from", help="IP address or container:NAME.")],
    destination: Annotated[
        str,
        typer.Option(
            "--to",
            help="IP[:PORT/PROTO] ([v6]:PORT/PROTO), container:NAME[:PORT/PROTO] "
            "or host:PORT/PROTO.",
        ),
    ],
    family: Annotated[
        int | None, typer.Option("--family", "-f", help="4 or 6 when neither end says.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Simulate a connection through the live ruleset: whether it opens (the firewall's
    verdict and what listens where the packet lands) and every rule on its path.

    The exit code follows the firewall's verdict: 0 accept, 3 drop, 4 cannot be told.
    """
    one_shot()
    runner = SubprocessRunner()
    state = gather(runner, connect)
    begin = start(state, source, destination, family)
    result = explain_connection(state, begin.packet, begin.local_origin)
    conn = connection(result, state, lambda netns: read_listeners(runner, netns))
    if as_json:
        typer.echo(to_json(result, conn))
    else:
        print_explanation(make_console(), result, conn)
    raise typer.Exit(EXIT_CODES[result.verdict])
