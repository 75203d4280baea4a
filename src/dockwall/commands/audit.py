"""`dockwall audit [FILE...]`: the live host, or Dockerfiles and compose files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from docker.errors import DockerException

from dockwall.audit.dns import daemon_dns, dns_bypass
from dockwall.audit.findings import Finding, print_findings, to_json
from dockwall.audit.live import audit_host, read_established_timeout
from dockwall.audit.static import audit_files
from dockwall.errors import DockwallError
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
        + docker_dns_findings()
    )
    if as_json:
        typer.echo(to_json(findings))
    else:
        print_findings(make_console(), findings)
    if any(f.severity != "info" for f in findings):
        raise typer.Exit(3)


def docker_dns_findings() -> list[Finding]:
    """Docker 28+ without daemon.json `dns`: names could bypass the forwarder."""
    try:
        client = connect()
    except DockwallError:
        return []
    try:
        version = str(client.version().get("Version", ""))
    except (DockerException, OSError):
        return []
    finally:
        client.close()
    return dns_bypass(version, daemon_dns())
