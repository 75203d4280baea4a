"""Options shared by the firewall commands, spelled once so their help reads the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dockwall.engine import DEFAULT_POLICY
from dockwall.locking import EXIT_LOCKED
from dockwall.policy.model import BackendChoice
from dockwall.policy.policyfile import DEFAULT_MAX_BYTES, MAX_BYTES_ENV

PolicyOption = Annotated[
    Path,
    typer.Option("--file", "-f", help="The policy file.", show_default=True, dir_okay=False),
]
BackendOption = Annotated[
    BackendChoice | None,
    typer.Option(
        "--backend",
        help="Firewall backend; overrides the policy's `backend:`. auto follows Docker.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
DEFAULT = DEFAULT_POLICY
MaxBytesOption = Annotated[
    int | None,
    typer.Option(
        "--max-policy-bytes",
        envvar=MAX_BYTES_ENV,
        min=1,
        help=f"Refuse a policy file larger than this (default {DEFAULT_MAX_BYTES}, 1 MiB: "
        "~1.3 s and ~75 MiB to parse; larger files cost more in proportion).",
        show_default=False,
    ),
]
NoWaitOption = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help=f"Fail at once (exit code {EXIT_LOCKED}) when another dockwall command or the "
        "agent holds the firewall lock, instead of waiting for it.",
    ),
]
