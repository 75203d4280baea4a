"""The `dockwall` command line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from dockwall.errors import DockwallError
from dockwall.lab.cli import app as lab_app

app = typer.Typer(
    help="dockwall: a declarative ingress/egress firewall for Docker hosts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(lab_app, name="lab")
err_console = Console(stderr=True)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 1."""
    try:
        app()
    except DockwallError as exc:
        err_console.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(1)
