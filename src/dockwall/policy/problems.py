"""How validators report a bad value so that the loader can point at the exact YAML node.

Pydantic only knows the location of the field whose validator failed. A validator often
knows better (the third CIDR of a list, the second of two conflicting keys), so it attaches
that as a path relative to its own location, and the loader follows it in the YAML tree.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_core import PydanticCustomError

PathStep = str | int
Path = tuple[PathStep, ...]

ERROR_TYPE = "dockwall"


@dataclass(frozen=True)
class Problem:
    """A user-facing message plus where, below the failing field, it applies.

    `at` descends from the field pydantic reports; `on_key` points at the mapping key
    rather than its value (unknown or conflicting keys); `see` names another place the
    message refers to (the first of two duplicate entries), relative like `at`.
    """

    message: str
    at: Path = ()
    on_key: bool = False
    see: Path | None = None

    def __str__(self) -> str:
        return self.message


def fail(
    message: str, *, at: Path = (), on_key: bool = False, see: Path | None = None
) -> PydanticCustomError:
    """An error to raise from a validator.

    The message travels inside the context object rather than as the template, because
    pydantic substitutes `{name}` placeholders and user input may contain braces.
    """
    return PydanticCustomError(
        ERROR_TYPE, "{problem}", {"problem": Problem(message, at, on_key, see)}
    )


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """A suffix suggesting the closest choice to a misspelt word, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def clip(text: str, limit: int = 60) -> str:
    """User text quoted for a message, cut short: labels may hold kilobytes of junk."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + "...'"


def shown(value: object) -> str:
    """A short description of a YAML value for messages: the text itself, or its kind."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return clip(value) if isinstance(value, str) else str(value)


def choice(value: object, options: Sequence[str]) -> str:
    """`value` when it is one of the fixed words in `options`, else a helpful error."""
    if isinstance(value, str) and value in options:
        return value
    listed = ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else options[0]
    hint = did_you_mean(value, options) if isinstance(value, str) else ""
    raise fail(f"must be {listed}, not {shown(value)}{hint}")
