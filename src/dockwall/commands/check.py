"""`dockwall check`: validate policy files with no Docker, no root and no firewall.

Policies live in git and are checked in CI and pre-commit hooks, on machines that have
neither Docker nor the rights to read a firewall. This reads each file with the very
parser `plan` and `apply` use, so it accepts and refuses exactly what they do, with the
same `file:line:column: field: message`, and adds the warnings of dockwall.policy.lint.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from dockwall.commands.options import JsonOption
from dockwall.commands.report import console, err
from dockwall.engine import DEFAULT_POLICY
from dockwall.errors import Location, PolicyError
from dockwall.policy import Policy
from dockwall.policy.lint import PolicyWarning, policy_warnings
from dockwall.policy.listfile import ListFileError, read_list_file
from dockwall.policy.lists import list_path
from dockwall.policy.load import parse_policy_document
from dockwall.policy.policyfile import read_policy_bytes
from dockwall.policy.yamlsource import Document

STDIN = "-"
STDIN_NAME = "<stdin>"

HELP = "\n".join(
    [
        "Validate policy files without Docker, root or a firewall (for CI and pre-commit).",
        "",
        (
            "Each file is read with the parser of plan and apply: it is valid here exactly "
            "when they would accept it, and a bad file gets their one-line error, "
            "file:line:column: field: message. A file named - is read from standard input "
            f"(and reported as {STDIN_NAME}). With no file, {DEFAULT_POLICY} is checked. Files"
            " may be given with -f or as arguments (pre-commit passes them so). The files of "
            "the policy's named lists are read too, as plan reads them (relative to the "
            "policy file; for standard input, to the current directory): a bad line is an "
            "error naming the list file and line. Nothing else is read: no Docker socket, no "
            "firewall, no state directory, so any user can run it anywhere."
        ),
        "",
        "[bold]Warnings[/] name parts of a valid policy that cannot take effect as written:",
        (
            "- an entry no container can ever match: a one-letter name, a compose project "
            "Compose would never write (capitals, dots);"
        ),
        "- an entry with neither ingress nor egress;",
        "- a rule list that allows nothing (ingress: [] or rules that admit no address);",
        (
            "- a rule that adds nothing: an earlier rule of the same list already covers its "
            "ports and its sources (or destinations);"
        ),
        (
            "- an address or port inside another of the same list: 192.0.2.0/24 next to "
            "0.0.0.0/0 (that is any IPv4 address), a duplicate, 80/tcp next to 1-1024/tcp;"
        ),
        (
            "- egress to the container's own loopback (127.0.0.0/8, ::1), which never leaves "
            "the container;"
        ),
        (
            "- from_containers / to_containers without defaults.peers: deny, where they "
            "change nothing;"
        ),
        "- labels.ingress_from, egress_to or containers while labels.trust is false.",
        "",
        (
            "[bold]Output.[/] Errors and warnings go to standard error, one line each; "
            "standard output says which files are valid. With --json standard output holds "
            "only this document:"
        ),
        (
            '  {"valid": bool, "files": [{"file": str, "valid": bool}], "errors": [ITEM], '
            '"warnings": [ITEM]}'
        ),
        (
            '  ITEM = {"file": str, "line": int | null, "column": int | null, "field": str, '
            '"message": str}'
        ),
        (
            "Lines and columns are 1-based (null when a file cannot be read); field is the "
            "path in the policy, like containers[1].ingress[0].from[2]."
        ),
        "",
        (
            "[bold]Exit status:[/] 0 when every file is valid (warnings allowed unless "
            "--strict), 1 otherwise, 2 on a usage error."
        ),
        "",
        "[bold]Examples:[/]",
        "  dockwall check -f policy.yaml",
        "  dockwall check --strict deploy/*.yaml",
        "  git show HEAD:policy.yaml | dockwall check -f - --json",
        "",
    ]
)


@dataclass(frozen=True)
class FileReport:
    """One file's verdict: the error that makes it invalid, if any, and its warnings."""

    file: str
    error: PolicyError | None = None
    warnings: list[PolicyWarning] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.error is None


def check_data(data: bytes, source: str, policy_path: Path | None = None) -> FileReport:
    """The report for policy text: parsed as plan parses it, its list files read as plan
    reads them (relative to `policy_path`, else to the current directory), then linted."""
    try:
        policy, document = parse_policy_document(data, source)
        skipped = list_warnings(policy, document, policy_path or Path(STDIN_NAME))
    except PolicyError as exc:
        return FileReport(source, exc)
    return FileReport(source, warnings=skipped + policy_warnings(policy, document))


def list_warnings(policy: Policy, document: Document, policy_path: Path) -> list[PolicyWarning]:
    """Each named list's file read with plan's reader: a bad line (or a missing file) is
    an error at the list's `file:` naming the list file and line, as plan says it; the
    lines an `on_error: skip` list skips are warnings."""
    found: list[PolicyWarning] = []
    for name, spec in policy.lists.items():
        where = ("lists", name, "file")
        try:
            contents = read_list_file(list_path(policy_path, spec.file), spec.on_error)
        except ListFileError as exc:
            raise document.error(where, str(exc)) from None
        found += [
            PolicyWarning(document.location(where), f"lists.{name}.file", text)
            for text in contents.warnings
        ]
    return found


def check_file(name: str) -> FileReport:
    if name == STDIN:
        return check_data(sys.stdin.buffer.read(), STDIN_NAME)
    try:
        read = read_policy_bytes(Path(name))
    except PolicyError as exc:
        return FileReport(name, exc)
    report = check_data(read.data, name, Path(name))
    owner = [
        PolicyWarning(Location(name), "(file)", text.removeprefix(f"{name}: "))
        for text in read.warnings
    ]
    return FileReport(report.file, report.error, owner + report.warnings)


def item(location: Location, field_path: str, message: str) -> dict[str, Any]:
    return {
        "file": location.source,
        "line": location.line,
        "column": location.column,
        "field": field_path,
        "message": message,
    }


def reports_json(reports: list[FileReport]) -> str:
    """The documented --json shape (see the command's help)."""
    return json.dumps(
        {
            "valid": all(r.valid for r in reports),
            "files": [{"file": r.file, "valid": r.valid} for r in reports],
            "errors": [
                item(r.error.location, r.error.field, r.error.message)
                for r in reports
                if r.error is not None
            ],
            "warnings": [item(w.location, w.field, w.message) for r in reports for w in r.warnings],
        },
        indent=2,
    )


def print_reports(reports: list[FileReport]) -> None:
    for report in reports:
        if report.error is not None:
            err.print(f"[red]error:[/] {escape(str(report.error))}", highlight=False)
        for warning in report.warnings:
            err.print(f"[yellow]warning:[/] {escape(str(warning))}", highlight=False)
        count = len(report.warnings)
        verdict = (
            "[red]invalid[/]"
            if report.error is not None
            else "valid" + (f", {count} warning{'s' * (count != 1)}" if count else "")
        )
        console.print(f"{escape(report.file)}: {verdict}", highlight=False)


def check(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Policy files (- for standard input), as pre-commit passes them.",
            metavar="POLICY",
            show_default=False,
        ),
    ] = None,
    policies: Annotated[
        list[str] | None,
        typer.Option(
            "--file",
            "-f",
            help="A policy file (- for standard input); may be repeated.",
            metavar="POLICY",
        ),
    ] = None,
    as_json: JsonOption = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Warnings make the check fail (exit 1) too.")
    ] = False,
) -> None:
    """Validate policy files without Docker, root or a firewall (help: HELP)."""
    names = [*(policies or ()), *(files or ())] or [str(DEFAULT_POLICY)]
    reports = [check_file(name) for name in names]
    if as_json:
        typer.echo(reports_json(reports))
    else:
        print_reports(reports)
    failed = not all(r.valid for r in reports) or (strict and any(r.warnings for r in reports))
    if failed:
        raise typer.Exit(1)
