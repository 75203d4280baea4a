"""`dockwall logs`: the drops the agent recorded, named, and followed live with -f."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.markup import escape

from dockwall.observe.journal import follow, journal_path, read_all
from dockwall.observe.logview import DIRECTIONS, Selection, columns, parse_since
from dockwall.terminal import make_console

COLOURS = {"INGRESS": "red", "EGRESS": "magenta", "PEERS": "yellow", "LOST": "bold red",
           "SUPPRESSED": "bold yellow"}  # fmt: skip
WIDTHS = (12, 10, 28, 34)


def logs(
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing drops as they happen.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Only entries newer than this: a span (10m, 2h, 1d) or an ISO time."),
    ] = None,
    container: Annotated[
        str | None, typer.Option(help="Only drops of this container (by name).")
    ] = None,
    direction: Annotated[
        str | None, typer.Option(help="Only ingress, egress or peers drops.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show the drops the agent logged: time, direction, container (as named when the drop
    happened), remote address and port, protocol, and the policy entry that denied it.

    The log is rate-limited in the kernel (policy `log:`); drops over the rate are not
    hidden: `SUPPRESSED` lines say how many the kernel counted beyond the log, and `LOST`
    lines say when records were lost on the way (buffer overrun, sequence gap). Exact
    totals are the rule counters (`dockwall status`, `/metrics`). Reads the journal the
    agent keeps under the run dir (DOCKWALL_RUN_DIR, default /run/dockwall).
    """
    if direction is not None and direction not in DIRECTIONS:
        raise typer.BadParameter(
            f"{direction!r}: use ingress, egress or peers", param_hint="--direction"
        )
    try:
        start = parse_since(since, time.time()) if since is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    selection = Selection(start, container, direction)
    path = journal_path()
    if not follow_ and not path.exists() and not path.with_name(path.name + ".1").exists():
        make_console(stderr=True).print(
            f"no drops recorded yet ({escape(str(path))} does not exist: is the agent running?)"
        )
        return
    show(read_all(path), selection, as_json)
    if follow_:
        try:
            show(follow(path), selection, as_json)
        except KeyboardInterrupt:
            return


def show(entries: Iterable[dict[str, Any]], selection: Selection, as_json: bool) -> None:
    console = make_console()
    for entry in entries:
        if not selection.wants(entry):
            continue
        if as_json:
            sys.stdout.write(json.dumps(entry, separators=(",", ":")) + "\n")
            sys.stdout.flush()
            continue
        parts = columns(entry)
        colour = COLOURS.get(parts[1], "")
        padded = [p.ljust(w) for p, w in zip(parts, WIDTHS, strict=False)] + parts[len(WIDTHS) :]
        text = " ".join(escape(p) for p in padded).rstrip()
        console.print(f"[{colour}]{text}[/]" if colour else text, highlight=False)
