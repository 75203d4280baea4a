"""`dockwall audit [FILE...]`: the live host, or Dockerfiles and compose files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dockwall.audit.findings import print_findings, to_json
from dockwall.audit.live import audit_host, read_established_timeout
from dockwall.audit.static import audit_files
from dockwall.explain.live import gather, one_shot
from dockwall.runner import SubprocessRunner
from dockwall.sources.docker_state import connect
from dockwall.terminal import make_console


def audit(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Dockerfiles and compose files; without them, the live host."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Find firewall mistakes: exit code 0 without findings above info, 3 with some."""
    one_shot()
    runner = SubprocessRunner()
    findings = (
        audit_files(files)
        if files
        else audit_host(gather(runner, connect), read_established_timeout(runner))
    )
    if as_json:
        typer.echo(to_json(findings))
    else:
        print_findings(make_console(), findings)
    if any(f.severity != "info" for f in findings):
        raise typer.Exit(3)
