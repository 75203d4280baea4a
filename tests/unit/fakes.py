"""A runner that answers from a script instead of running anything (no root needed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dockwall.runner import Result

Responder = Callable[[list[str], str | None], tuple[int, str]]


@dataclass
class FakeRunner:
    """Records every command; `respond` decides the exit code and stdout of each."""

    respond: Responder
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> Result:
        args = list(argv)
        self.calls.append((args, input))
        code, out = self.respond(args, input)
        if check and code != 0:
            from dockwall.errors import CommandError

            raise CommandError(args, code, out)
        return Result(args, code, out, "")

    def spawn(self, argv: Sequence[str], *, log_path: str) -> int:
        raise AssertionError("unit tests never spawn daemons")
