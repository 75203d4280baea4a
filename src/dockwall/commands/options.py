"""Options shared by the firewall commands, spelled once so their help reads the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from dockwall.engine import DEFAULT_POLICY

PolicyOption = Annotated[
    Path,
    typer.Option("--file", "-f", help="The policy file.", show_default=True, dir_okay=False),
]
BackendOption = Annotated[
    Literal["auto", "iptables", "nftables"] | None,
    typer.Option(
        "--backend",
        help="Firewall backend; overrides the policy's `backend:`. auto follows Docker.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
DEFAULT = DEFAULT_POLICY
