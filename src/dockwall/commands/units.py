"""`dockwall install-units`: the systemd units that keep dockwall's rules across reboots."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from dockwall.commands.report import console

UNITS = ("dockwall-boot.service", "dockwall-agent.service")


def unit_text(name: str) -> str:
    return resources.files("dockwall.systemd").joinpath(name).read_text()


def install_units(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write the units.", file_okay=False)
    ] = Path("/etc/systemd/system"),
    show: Annotated[bool, typer.Option("--print", help="Print them instead of writing.")] = False,
) -> None:
    """Write dockwall-boot.service (restores the rules before Docker starts) and
    dockwall-agent.service (follows Docker afterwards); each file explains its ordering.

    Then: systemctl daemon-reload && systemctl enable --now dockwall-boot dockwall-agent
    """
    for name in UNITS:
        if show:
            console.print(f"# {name}\n{unit_text(name)}", highlight=False, markup=False)
            continue
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(unit_text(name))
        console.print(f"wrote {directory / name}")
