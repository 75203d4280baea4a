"""Reading a policy file or a container label into a validated model.

Validation runs on plain data, so pydantic reports errors by model location
(`containers.1.ingress.rules.0.host_ports.0`). This module walks that location through
the YAML data to the node the user wrote (`containers[1].ingress[0].port`) and reports it
as one PolicyError with file, line and column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dockwall.errors import Location, PolicyError
from dockwall.policy.base import yaml_context
from dockwall.policy.listfile import KnownContents
from dockwall.policy.lists import PreviousContents, load_lists
from dockwall.policy.model import Policy
from dockwall.policy.policyfile import read_policy_bytes
from dockwall.policy.problems import Path, PathStep, Problem, shown
from dockwall.policy.rules import EgressPolicy, EgressRule, IngressPolicy, IngressRule
from dockwall.policy.yamlsource import Document, decode, format_path, read_document

__all__ = [
    "MAX_LABEL_BYTES",
    "LoadedPolicy",
    "load_policy",
    "parse_label_rules",
    "parse_policy",
    "parse_policy_document",
    "read_policy",
]

MAX_LABEL_BYTES = 64 * 1024

M = TypeVar("M", bound=BaseModel)

_KEYLIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPECTED = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "string_type": "a string",
}


def _spellings() -> dict[str, list[tuple[str, bool]]]:
    """Field name -> the YAML keys that may fill it, and whether each holds one value."""
    table: dict[str, list[tuple[str, bool]]] = {}
    for model in (IngressRule, EgressRule):
        for key, (field, single) in model.renames().items():
            table.setdefault(field, []).append((key, single))
    return table


_SPELLINGS = _spellings()


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy read from a file, and the warnings about who may write that file."""

    policy: Policy
    warnings: tuple[str, ...]


def read_policy(
    path: FilePath,
    max_bytes: int | None = None,
    known: KnownContents | None = None,
    previous: PreviousContents | None = None,
) -> LoadedPolicy:
    """The policy in the file at `path` (a regular file of at most `max_bytes`, by default
    DOCKWALL_MAX_POLICY_BYTES or 1 MiB); every problem is a PolicyError naming the place.
    `known`: list contents already read, by file digest; `previous`: each list's
    contents before, by name (see read_list_file)."""
    read = read_policy_bytes(path, max_bytes)
    parsed = parse_policy(read.data, str(path))
    policy, list_warnings = load_lists(parsed, FilePath(path), known, previous)
    return LoadedPolicy(policy, (*read.warnings, *list_warnings))


def load_policy(path: FilePath, max_bytes: int | None = None) -> Policy:
    """The policy alone, for callers that do not report the file's warnings."""
    return read_policy(path, max_bytes).policy


def parse_policy(data: bytes | str, source: str) -> Policy:
    """The policy in `data`; `source` names it in error messages (usually the file name)."""
    return parse_policy_document(data, source)[0]


def parse_policy_document(data: bytes | str, source: str) -> tuple[Policy, Document]:
    """The policy and the YAML it came from, whose spots place `dockwall check`'s warnings."""
    text = decode(data, source) if isinstance(data, bytes) else data
    document = read_document(text, source)
    if not isinstance(document.data, dict):
        keys = ", ".join(Policy.yaml_keys())
        raise document.error(
            (), f"the top level must be a mapping with {keys}, not {shown(document.data)}"
        )
    return _with_positions(_validate(Policy, document), document), document


def _with_positions(policy: Policy, document: Document) -> Policy:
    """Entries remember where they were written, for errors found later (two entries
    matching one container), long after the YAML is gone."""
    entries = tuple(
        entry.model_copy(
            update={"index": index, "location": document.location(("containers", index))}
        )
        for index, entry in enumerate(policy.containers)
    )
    return policy.model_copy(update={"containers": entries})


@overload
def parse_label_rules(value: str, source: str, direction: Literal["ingress"]) -> IngressPolicy: ...
@overload
def parse_label_rules(value: str, source: str, direction: Literal["egress"]) -> EgressPolicy: ...
def parse_label_rules(
    value: str, source: str, direction: Literal["ingress", "egress"]
) -> IngressPolicy | EgressPolicy:
    """Rules from a container label, e.g. `[{port: 7272/tcp, from: [any]}]` or `deny`.

    Labels are written by whoever starts the container, so they are size-bounded before
    parsing and then held to exactly the checks a policy file gets.
    """
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_LABEL_BYTES:
        raise PolicyError(
            Location(source),
            direction,
            f"the label is {size} bytes; the limit is {MAX_LABEL_BYTES}",
        )
    document = read_document(value, source, root=direction, what="the label")
    if direction == "ingress":
        return _validate(IngressPolicy, document)
    return _validate(EgressPolicy, document)


def _validate(model: type[M], document: Document) -> M:
    try:
        return model.model_validate(document.data, context=yaml_context())
    except ValidationError as exc:
        errors = [_translate(error, document) for error in exc.errors(include_url=False)]
        raise min(errors, key=_position) from None


def _position(error: PolicyError) -> tuple[int, int]:
    """Errors are reported in document order: the first one the reader would meet."""
    return error.location.line or 0, error.location.column or 0


def _translate(error: ErrorDetails, document: Document) -> PolicyError:
    """The pydantic error as a PolicyError at the YAML node it is about."""
    problem = error.get("ctx", {}).get("problem")
    if not isinstance(problem, Problem):
        problem = Problem(_message(error), on_key=error["type"] == "extra_forbidden")
    path, shown_path = _follow(document.data, (*error["loc"], *problem.at))
    message = problem.message
    if problem.see is not None:
        other = document.location(_follow(document.data, (*error["loc"], *problem.see))[0])
        message += f" (at line {other.line}, column {other.column})"
    return PolicyError(
        document.location(path, on_key=problem.on_key),
        format_path(document.root, shown_path),
        message,
    )


def _message(error: ErrorDetails) -> str:
    """Pydantic's own errors, reworded in the terms of the YAML the user wrote."""
    if error["type"] == "missing":
        return "is required"
    expected = _EXPECTED.get(error["type"])
    if expected is not None:
        return f"expected {expected}, got {shown(error['input'])}"
    return error["msg"]


def _follow(data: object, loc: Sequence[PathStep]) -> tuple[Path, Path]:
    """Walks a model location through the YAML data.

    Returns the path of the deepest node that exists (for the position) and the path to
    show, which also names a missing key. Location steps with no YAML counterpart (the
    `rules` of a list written inline, pydantic's union tags) are passed over.
    """
    path: list[PathStep] = []
    node: Any = data
    steps = list(loc)
    while steps:
        step = steps.pop(0)
        if isinstance(step, int):
            if isinstance(node, list) and 0 <= step < len(node):
                path.append(step)
                node = node[step]
            continue
        if not isinstance(node, dict):
            continue
        found = _yaml_key(node, step)
        if found is None:
            if _KEYLIKE.fullmatch(step):
                return tuple(path), (*path, step)
            continue
        key, single = found
        path.append(key)
        node = node[key]
        if single and steps and isinstance(steps[0], int):
            steps.pop(0)
    return tuple(path), tuple(path)


def _yaml_key(mapping: dict[str, Any], field: str) -> tuple[str, bool] | None:
    """The key in `mapping` that filled `field`, and whether it held a single value."""
    if field in mapping:
        return field, False
    for key, single in _SPELLINGS.get(field, ()):
        if key in mapping:
            return key, single
    return None
