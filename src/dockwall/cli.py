"""The `dockwall` command line: thin wiring over the commands modules."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from dockwall.commands import (
    agent,
    audit,
    check,
    explain,
    export,
    graph,
    lab,
    logs,
    policy,
    status,
    units,
)
from dockwall.errors import DockwallError
from dockwall.terminal import make_console

app = typer.Typer(
    help="dockwall: a declarative ingress/egress firewall for Docker hosts.\n\n"
    "Write who may reach each container's published ports and where each container may "
    "connect in one policy file; dockwall compiles it to the host's firewall (iptables "
    "DOCKER-USER or nftables), applies it atomically over IPv4 and IPv6, and shows the "
    "diff before it does. Docker is reached as its CLI does (DOCKER_HOST, contexts).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command()(policy.init)
app.command()(policy.plan)
app.command()(policy.apply)
app.command()(status.status)
app.command(help=check.HELP)(check.check)
app.command()(policy.reset)
app.command()(agent.agent)
app.command()(logs.logs)
app.command()(graph.graph)
app.command()(units.install_units)
app.command()(export.export)
app.command()(explain.explain)
app.command()(audit.audit)
app.add_typer(lab.app, name="lab")
err_console = make_console(stderr=True)


def main() -> None:
    """Entry point: user errors become one line on stderr and their exit code (1 unless
    the error says otherwise: 3 state not saved, 4 lock busy)."""
    try:
        app()
    except DockwallError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
