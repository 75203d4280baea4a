"""The one place dockwall makes rich Consoles, so every command writes the same way.

On a terminal rich fits output to the window. Anywhere else (a CI log, `make demo | tee`)
rich would assume 80 columns and break plan lines, rules and addresses in the middle,
which makes logs unreadable and impossible to grep. There lines stay whole: nothing is
wrapped, and tables take the width their content needs. `COLUMNS` is ignored there on
purpose: libraries such as readline export it into the environment of every child (so
a Python test harness or build script would bring the 80 columns back).

Emoji codes are off everywhere: rich would otherwise print `2001:db8:200:abcd::/64`
with an emoji in place of `:abcd:`, which is the name of one.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

PIPE_WIDTH = 10_000
"""Wide enough that no table or line is ever cut, for output that is not a terminal."""

RULE_WIDTH = 100
"""Horizontal rules fill the width; off a terminal they stop here."""


def make_console(*, stderr: bool = False) -> Console:
    """A Console for stdout (or stderr) that never hard-wraps when it is not a terminal."""
    if is_tty(sys.stderr if stderr else sys.stdout):
        return Console(stderr=stderr, soft_wrap=stderr, emoji=False)
    return Console(stderr=stderr, soft_wrap=True, width=PIPE_WIDTH, emoji=False)


def is_tty(stream: TextIO) -> bool:
    """A real terminal, whatever FORCE_COLOR says: CI sets it for colours in its logs,
    and rich would then take the log for an 80-column terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def rule_width(console: Console) -> int:
    """The width for a horizontal rule: the terminal's, or RULE_WIDTH in a pipe."""
    return min(console.width, RULE_WIDTH)
