"""YAML read into plain data that remembers where every value and key was written.

Only composition is used, never construction: scalars keep their original text (PyYAML's
YAML 1.1 resolvers would turn `8080:80` into an integer and `no` into False), duplicate
keys are caught instead of silently overwritten, and no tag can run code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

import yaml

from dockwall.errors import Location, PolicyError
from dockwall.policy.problems import Path, clip

MAX_DEPTH = 64
_NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class Spot:
    """Where a value was written and, for a mapping value, where its key was; 1-based."""

    line: int
    column: int
    key_line: int | None = None
    key_column: int | None = None


@dataclass
class Document:
    """Plain data (dicts, lists, strings, None) plus the spot of every path in it.

    `root` names the document in field paths when it is not a whole policy (a label holds
    just `ingress` rules, so its paths read `ingress[0].port`).
    """

    source: str
    data: object
    root: str = ""
    spots: dict[Path, Spot] = field(default_factory=dict)

    def location(self, path: Path, *, on_key: bool = False) -> Location:
        """The location of the value at `path`, or of its key; paths not in the data are
        placed at their nearest written ancestor."""
        while path not in self.spots:
            path = path[:-1]
        spot = self.spots[path]
        if on_key and spot.key_line is not None:
            return Location(self.source, spot.key_line, spot.key_column)
        return Location(self.source, spot.line, spot.column)

    def error(self, path: Path, message: str, *, on_key: bool = False) -> PolicyError:
        """A PolicyError at `path`, named in the `containers[1].ingress[0]` form."""
        return PolicyError(
            self.location(path, on_key=on_key), format_path(self.root, path), message
        )


def format_path(root: str, path: Path) -> str:
    """`containers[1].ingress[0].from[2]`: keys joined by dots, indexes in brackets."""
    text = root
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return text


def read_document(text: str, source: str, *, root: str = "", what: str = "the policy") -> Document:
    """Builds a Document straight from the parser's events; YAML problems become PolicyErrors.

    Events, not nodes: libyaml's event stream is an order of magnitude faster than
    composing node objects, and a 10,000-line policy must load in well under a second.
    """
    try:
        builder = _build(text, source, root, _FAST_PARSER)
    except (yaml.MarkedYAMLError, yaml.reader.ReaderError):
        builder = _explained(text, source, root)
    if not builder.done:
        raise PolicyError(Location(source, 1, 1), root, f"{what} is empty (or only comments)")
    return builder.document


def _build(text: str, source: str, root: str, parser: type[yaml.SafeLoader]) -> _Builder:
    builder = _Builder(Document(source, None, root))
    for event in yaml.parse(text, Loader=parser):
        builder.feed(event)
    return builder


def _explained(text: str, source: str, root: str) -> _Builder:
    """Broken YAML is parsed again by PyYAML's own parser: its messages name the culprit."""
    try:
        return _build(text, source, root, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, source) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, source) from None


_FAST_PARSER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


class _Builder:
    """Turns parser events into plain data, recording spots and catching duplicate keys.

    Aliases are refused outright, which rules out billion-laughs expansion and cyclic
    documents; the depth bound keeps a `[[[[...` bomb from exhausting the stack.
    """

    def __init__(self, document: Document) -> None:
        self.document = document
        self.stack: list[_Open] = []
        self.done = False
        self.first: yaml.Event | None = None

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.AliasEvent):
            self._refuse(
                event, "YAML aliases (*name) are not supported: write the value out in full"
            )
        if isinstance(event, yaml.DocumentStartEvent):
            self._one_document(event)
        if isinstance(event, yaml.ScalarEvent):
            self._place(event, _scalar(event))
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if len(self.stack) >= MAX_DEPTH:
                self._refuse(event, f"nested more than {MAX_DEPTH} levels deep")
            container: dict[str, object] | list[object] = (
                {} if isinstance(event, yaml.MappingStartEvent) else []
            )
            path = self._place(event, container)
            self.stack.append(_Open(container, path))
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self.stack.pop()

    def _place(self, event: yaml.NodeEvent, value: object) -> Path:
        """Puts a value where the open collection expects it; returns the value's path."""
        line, column = _position(event)
        if not self.stack:
            self.document.data = value
            self.document.spots[()] = Spot(line, column)
            self.done = True
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            path: Path = (*top.path, len(top.value))
            top.value.append(value)
            self.document.spots[path] = Spot(line, column)
            return path
        if top.key is None:
            self._set_key(top, event, value, line, column)
            return top.path
        path = (*top.path, top.key[0])
        top.value[top.key[0]] = value
        self.document.spots[path] = Spot(line, column, top.key[1], top.key[2])
        top.key = None
        return path

    def _set_key(
        self, top: _Open, event: yaml.NodeEvent, value: object, line: int, column: int
    ) -> None:
        if not isinstance(event, yaml.ScalarEvent):
            raise PolicyError(
                Location(self.document.source, line, column),
                format_path(self.document.root, top.path),
                "keys must be plain words, not lists or mappings",
            )
        name = "" if value is None else str(value)
        assert isinstance(top.value, dict)
        if name in top.value:
            first = self.document.spots[(*top.path, name)]
            raise PolicyError(
                Location(self.document.source, line, column),
                format_path(self.document.root, (*top.path, name)),
                f"duplicate key {clip(name)} (first given at line {first.key_line}, "
                f"column {first.key_column})",
            )
        top.key = (name, line, column)

    def _one_document(self, event: yaml.Event) -> None:
        if self.first is None:
            self.first = event
            return
        line, column = _position(self.first)
        self._refuse(
            event,
            f"invalid YAML: expected a single document in the stream at line {line}, "
            f"column {column}: but found another document",
        )

    def _refuse(self, event: yaml.Event, message: str) -> NoReturn:
        line, column = _position(event)
        raise PolicyError(Location(self.document.source, line, column), "", message)


@dataclass
class _Open:
    """A mapping or sequence still being filled, and (for a mapping) its pending key."""

    value: dict[str, object] | list[object]
    path: Path
    key: tuple[str, int, int] | None = None


def _scalar(event: yaml.ScalarEvent) -> str | None:
    """Plain empty/null scalars are None; every other scalar keeps its original text."""
    if event.tag == _NULL_TAG or (not event.style and event.tag is None and event.value in _NULLS):
        return None
    return str(event.value)


def _position(node: yaml.Node | yaml.Event) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


def _syntax_error(exc: yaml.MarkedYAMLError, source: str) -> PolicyError:
    """The YAML parser's complaint at its own position, with the context it gives."""
    mark = exc.problem_mark or exc.context_mark
    location = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
    context = exc.context or ""
    if context and exc.context_mark:
        context += f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
    parts = [part for part in (context, exc.problem) if part]
    return PolicyError(location, "", "invalid YAML: " + (": ".join(parts) or "cannot parse"))


def _reader_error(exc: yaml.reader.ReaderError, text: str, source: str) -> PolicyError:
    """A character YAML does not allow (a control character, a lone surrogate)."""
    code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
    return PolicyError(
        _end_of(text[: int(exc.position)], source),
        "",
        f"character U+{code:04X} is not allowed in YAML",
    )


def decode(data: bytes, source: str) -> str:
    """UTF-8 text, or a PolicyError at the line and column of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            _end_of(data[: exc.start].decode("utf-8"), source),
            "",
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
        ) from None


def _end_of(before: str, source: str) -> Location:
    """The location just after `before`, the text preceding a bad character."""
    line_start = before.rfind("\n") + 1
    return Location(source, before.count("\n") + 1, len(before) - line_start + 1)
