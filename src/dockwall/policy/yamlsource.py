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
    """Composes `text` into a Document; any YAML problem becomes a located PolicyError."""
    node = _compose(text, source)
    if node is None:
        raise PolicyError(Location(source, 1, 1), root, f"{what} is empty (or only comments)")
    document = Document(source, None, root)
    document.data = _plain(node, (), None, document)
    return document


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        loader = _Loader(text, source)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, source) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, source) from None


class _Loader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses aliases and bounds nesting.

    Aliases are refused outright, which rules out billion-laughs expansion and cyclic
    documents; the depth bound keeps a `[[[[...` bomb from exhausting the stack.
    """

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self._source = source
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._refuse("YAML aliases (*name) are not supported: write the value out in full")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                self._refuse(f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _refuse(self, message: str) -> NoReturn:
        """Stops at the event compose_node has just peeked at (check_event keeps it)."""
        mark = self.current_event.start_mark
        raise PolicyError(Location(self._source, mark.line + 1, mark.column + 1), "", message)


def _plain(node: yaml.Node, path: Path, key: Spot | None, document: Document) -> object:
    """The node as plain data, recording spots (and catching duplicate keys) on the way."""
    line, column = _position(node)
    document.spots[path] = Spot(
        line, column, key.line if key else None, key.column if key else None
    )
    if isinstance(node, yaml.MappingNode):
        return _plain_mapping(node, path, document)
    if isinstance(node, yaml.SequenceNode):
        return [
            _plain(item, (*path, index), None, document) for index, item in enumerate(node.value)
        ]
    if node.tag == _NULL_TAG and isinstance(node, yaml.ScalarNode) and not node.style:
        return None
    return str(node.value)


def _plain_mapping(node: yaml.MappingNode, path: Path, document: Document) -> dict[str, object]:
    out: dict[str, object] = {}
    for key_node, value_node in node.value:
        line, column = _position(key_node)
        if not isinstance(key_node, yaml.ScalarNode):
            raise PolicyError(
                Location(document.source, line, column),
                format_path(document.root, path),
                "keys must be plain words, not lists or mappings",
            )
        name = str(key_node.value)
        key_path: Path = (*path, name)
        if name in out:
            first = document.spots[key_path]
            raise PolicyError(
                Location(document.source, line, column),
                format_path(document.root, key_path),
                f"duplicate key {clip(name)} (first given at line {first.key_line}, "
                f"column {first.key_column})",
            )
        out[name] = _plain(value_node, key_path, Spot(line, column), document)
    return out


def _position(node: yaml.Node) -> tuple[int, int]:
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
