"""Errors that reach the user as one clear line and a non-zero exit."""

from __future__ import annotations

from dataclasses import dataclass


class DockwallError(Exception):
    """An error with a message meant for the user, never a traceback; `exit_code` lets
    scripts tell the kinds that need a different reaction apart."""

    exit_code = 1


@dataclass(frozen=True)
class Location:
    """Where in a source (file, label) an error was found; line and column are 1-based."""

    source: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.source
        if self.column is None:
            return f"{self.source}:{self.line}"
        return f"{self.source}:{self.line}:{self.column}"


class PolicyError(DockwallError):
    """Bad input in a policy file or a label: names the place and the field."""

    def __init__(self, location: Location, field: str, message: str) -> None:
        self.location = location
        self.field = field
        self.message = message
        where = f"{location}: {field}: " if field else f"{location}: "
        super().__init__(where + message)


class CommandError(DockwallError):
    """A subprocess failed; keeps what it printed so the user sees the real cause."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(
            f"{' '.join(argv)} exited with {returncode}: {stderr.strip() or '(no output)'}"
        )
