"""Reading the files of a policy's named `lists`, after the policy itself validated.

The contents travel on the Policy (`loaded_lists`, never written back to YAML), so
everything that compiles a policy, the agent included, sees the lists it was read with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dockwall.policy.listfile import KnownContents, ListContents, ListFileError, read_list_file
from dockwall.policy.model import Policy


def list_path(policy_path: Path, file: str) -> Path:
    """A relative list file is next to the policy file, wherever dockwall was started."""
    path = Path(file)
    return path if path.is_absolute() else policy_path.parent / path


PreviousContents = Callable[[str], ListContents | None]
"""The contents list NAME had when last read or applied (read_list_file's `previous`)."""


def load_lists(
    policy: Policy,
    policy_path: Path,
    known: KnownContents | None = None,
    previous: PreviousContents | None = None,
) -> tuple[Policy, tuple[str, ...]]:
    """The policy with every list's contents, and the warnings of lists that skip bad
    lines; `known` gives contents already read for a file's digest, `previous` a list's
    contents before (read_list_file)."""
    loaded: dict[str, ListContents] = {}
    warnings: list[str] = []
    for name, spec in policy.lists.items():
        before = previous(name) if previous is not None else None
        path = list_path(policy_path, spec.file)
        try:
            contents = read_list_file(path, spec.on_error, known, before)
        except ListFileError as exc:
            raise ListFileError(f"lists.{name}: {exc}") from None
        loaded[name] = contents
        warnings += [f"lists.{name}: {w}" for w in contents.warnings]
    if not loaded:
        return policy, ()
    return policy.model_copy(update={"loaded_lists": loaded}), tuple(warnings)
