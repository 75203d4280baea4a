"""A finding: what is wrong, the evidence, and the dockwall policy that fixes it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

from rich.console import Console
from rich.markup import escape

Severity = Literal["high", "medium", "low", "info"]
ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}
COLOURS = {"high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    evidence: str
    fix: str
    where: str = ""


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (ORDER[f.severity], f.where, f.code))


def to_json(findings: list[Finding]) -> str:
    return json.dumps([asdict(f) for f in sorted_findings(findings)], indent=2)


def print_findings(console: Console, findings: list[Finding]) -> None:
    if not findings:
        console.print("[green]no findings[/]")
        return
    for f in sorted_findings(findings):
        colour = COLOURS[f.severity]
        where = f" {escape(f.where)}:" if f.where else ""
        console.print(
            f"[bold {colour}]{f.severity.upper()}[/] [bold]{f.code}[/]{where} {escape(f.message)}"
        )
        console.print(f"  evidence: [dim]{escape(f.evidence)}[/]")
        console.print("  fix:")
        for line in f.fix.splitlines():
            console.print(f"    {escape(line)}", highlight=False)


def ingress_snippet(
    container: str, port: str, sources: str = '[203.0.113.0/24, "2001:db8:203::/48"]'
) -> str:
    """The dockwall policy that restricts a published port to named sources."""
    return (
        "version: 1\ncontainers:\n"
        f"  - name: {container}\n    ingress:\n      - port: {port}\n        from: {sources}"
    )


def egress_snippet(container: str) -> str:
    return (
        "version: 1\ncontainers:\n"
        f"  - name: {container}\n    egress:\n"
        "      - to: [203.0.113.10/32]\n        ports: [443/tcp]"
    )
