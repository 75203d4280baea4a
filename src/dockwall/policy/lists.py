"""Reading the files of a policy's named `lists`, after the policy itself validated.

The contents travel on the Policy (`loaded_lists`, never written back to YAML), so
everything that compiles a policy, the agent included, sees the lists it was read with.
"""

from __future__ import annotations

from pathlib import Path

from dockwall.policy.listfile import KnownContents, ListContents, ListFileError, read_list_file
from dockwall.policy.model import Policy


def list_path(policy_path: Path, file: str) -> Path:
    """A relative list file is next to the policy file, wherever dockwall was started."""
    path = Path(file)
    return path if path.is_absolute() else policy_path.parent / path


def load_lists(
    policy: Policy, policy_path: Path, known: KnownContents | None = None
) -> tuple[Policy, tuple[str, ...]]:
    """The policy with every list's contents, and the warnings of lists that skip bad
    lines; `known` gives contents already read for a file's digest (read_list_file)."""
    loaded: dict[str, ListContents] = {}
    warnings: list[str] = []
    for name, spec in policy.lists.items():
        try:
            contents = read_list_file(list_path(policy_path, spec.file), spec.on_error, known)
        except ListFileError as exc:
            raise ListFileError(f"lists.{name}: {exc}") from None
        loaded[name] = contents
        warnings += [f"lists.{name}: {w}" for w in contents.warnings]
    if not loaded:
        return policy, ()
    return policy.model_copy(update={"loaded_lists": loaded}), tuple(warnings)


def reload_lists(policy: Policy, policy_path: Path) -> tuple[Policy, tuple[str, ...]]:
    """The same policy with its list files read again (the agent's list watcher)."""
    return load_lists(policy, policy_path)
