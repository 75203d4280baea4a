"""What dockwall remembers between runs: the last applied ruleset and the agent's state.

The last applied ruleset is what `apply --boot` restores before Docker starts, so the
firewall holds from the first packet after a reboot. It must never disagree with what
is in force without anyone being told, so a load is a small transaction on disk too:
the new ruleset is written as *pending* before the load, promoted to *last applied*
by a rename once the load succeeded, and removed if the load failed. A process killed
in between leaves the pending file, and `apply --boot` decides which of the two is
live (see Engine.boot). Every write is a temporary file in the same directory, fsynced
and renamed, so a crash never leaves half a file.

The elements of the named lists are not in the JSON but beside it (`statelists`), so
a plan reads the digest last applied (`applied_list`) without reading a single element.
Where the state lives, and how a file is written there, is `statedir`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from dockwall.compile.ir import Ruleset
from dockwall.errors import DockwallError
from dockwall.statedir import fsync_dir, run_dir, state_dir, write_atomically
from dockwall.statelists import (
    LISTS,
    save_lists,
    stored_elements,
    with_elements,
    without_elements,
)

LAST_APPLIED = "last-applied.json"
PENDING = "pending-apply.json"
FQDN_LEARNED = "fqdn-learned.json"  # the DNS forwarder's record (dnsproxy/learned.py)
EXIT_STATE_NOT_SAVED = 3


class StateError(DockwallError):
    """The rules are in force, but `apply --boot` would not restore them."""

    exit_code = EXIT_STATE_NOT_SAVED

    def __init__(self, path: Path, exc: OSError) -> None:
        self.path = path
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError | NotADirectoryError) and exc.filename:
            reason = f"{exc.filename} is not a directory"
        super().__init__(f"rules are in force but the state could not be saved to {path}: {reason}")


@functools.cache
def ruleset_adapter() -> TypeAdapter[Ruleset]:
    """Built on first use: its schema costs a plan in sync, which never reads or writes a
    ruleset, a tenth of its time."""
    return TypeAdapter(Ruleset)


@dataclass(frozen=True)
class Applied:
    backend: str
    ruleset: Ruleset


def _payload(backend: str, ruleset: Ruleset) -> str:
    """The ruleset with the lists' elements left out: they are in `lists/` (save_lists)."""
    bare = replace(ruleset, lists=tuple(without_elements(found) for found in ruleset.lists))
    dumped = json.loads(ruleset_adapter().dump_json(bare))
    return json.dumps({"backend": backend, "ruleset": dumped})


def prune_lists() -> None:
    """Element files neither the last applied nor a pending ruleset names any more."""
    keep = {f"{digest}{kind}" for digest in recorded_digests() for kind in (".txt", ".keys")}
    with contextlib.suppress(OSError):
        for path in (state_dir() / LISTS).iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)


def recorded_digests() -> set[str]:
    digests: set[str] = set()
    for name in (LAST_APPLIED, PENDING):
        record = _list_records(state_dir() / name)
        if record is not None:
            digests |= {found.digest for found in record[1].values()}
    return digests


def save_pending(backend: str, ruleset: Ruleset, lines: Mapping[str, int] | None = None) -> None:
    """Before a load: the ruleset about to be handed to the kernel (list elements that
    are not saved yet first, so a pending ruleset never names elements that are not).
    `lines`: each list file's line count by digest, when read without a line skipped:
    the saved contents then stand for that file (`stored_list`)."""
    save_lists(ruleset.lists, lines)
    write_atomically(state_dir() / PENDING, _payload(backend, ruleset))
    found = {item.name: AppliedList(item.name, item.digest) for item in ruleset.lists}
    _pending[state_dir()] = (backend, found)


def commit_pending() -> None:
    """After a successful load: the pending ruleset becomes the one boot restores."""
    directory = state_dir()
    os.replace(directory / PENDING, directory / LAST_APPLIED)
    fsync_dir(directory)
    remember(directory / LAST_APPLIED, _pending.pop(directory, None))
    prune_lists()


def discard_pending() -> None:
    """After a failed (rolled back) load: the last applied ruleset is still the live one."""
    with contextlib.suppress(OSError):
        (state_dir() / PENDING).unlink(missing_ok=True)
    prune_lists()


def save_applied(backend: str, ruleset: Ruleset) -> None:
    save_lists(ruleset.lists)
    write_atomically(state_dir() / LAST_APPLIED, _payload(backend, ruleset))


def forget_applied() -> None:
    """After a reset there is nothing to restore at boot, nor learned addresses for the
    next agent to put back."""
    for name in (PENDING, LAST_APPLIED):
        (state_dir() / name).unlink(missing_ok=True)
    prune_lists()
    (run_dir() / FQDN_LEARNED).unlink(missing_ok=True)


def _read(path: Path) -> Applied:
    payload = json.loads(path.read_text())
    ruleset = ruleset_adapter().validate_python(payload["ruleset"])
    lists = tuple(with_elements(found) for found in ruleset.lists)
    return Applied(str(payload["backend"]), replace(ruleset, lists=lists))


def load_applied() -> Applied:
    path = state_dir() / LAST_APPLIED
    try:
        return _read(path)
    except FileNotFoundError as exc:
        raise DockwallError(f"{path}: nothing applied yet, so nothing to restore") from exc
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise DockwallError(f"{path}: unreadable ({exc}); run dockwall apply") from exc


def load_pending() -> Applied | None:
    """The ruleset of a load that was interrupted before it was committed, if any; an
    unreadable one counts as none (it was never the one in force)."""
    try:
        return _read(state_dir() / PENDING)
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return None


@dataclass(frozen=True)
class AppliedList:
    """A named list as last applied: the digest of its file, and its elements on demand
    (None when they were not kept: a state file of an older version, or damaged)."""

    name: str
    digest: str

    def elements(self) -> tuple[Sequence[str], Sequence[str]] | None:
        """(v4, v6) from `lists/`: a million lines, read only when iterated."""
        return stored_elements(self.digest)


_pending: dict[Path, tuple[str, dict[str, AppliedList]]] = {}
_distrusted: contextvars.ContextVar[bool] = contextvars.ContextVar("distrusted", default=False)
_records: dict[Path, tuple[tuple[int, int, int], tuple[str, dict[str, AppliedList]] | None]] = {}


@contextlib.contextmanager
def records_distrusted() -> Iterator[None]:
    """Within: `applied_list` answers None, so the backends compare the kernel's own
    elements one by one (`plan --verify-lists`) instead of trusting the record."""
    token = _distrusted.set(True)
    try:
        yield
    finally:
        _distrusted.reset(token)


def applied_list(name: str, backend: str) -> AppliedList | None:
    """The list `name` as `backend` last applied it, which is what its kernel set holds
    unless someone edited the set by hand; None when that is not known for sure: no
    last applied ruleset, another backend's, a list it did not have, a pending ruleset
    (an interrupted load: the kernel holds one of the two), or inside
    `records_distrusted`. The backends then read the kernel set itself.

    Cheap on a hot path (the agent plans on every event): only the small JSON is read,
    and again only when it changed on disk."""
    if _distrusted.get() or (state_dir() / PENDING).exists():
        return None
    record = _list_records(state_dir() / LAST_APPLIED)
    if record is None or record[0] != backend:
        return None
    return record[1].get(name)


def applied_digests() -> dict[str, str]:
    """Every list's digest as last applied, whichever backend: what `status` shows."""
    record = _list_records(state_dir() / LAST_APPLIED)
    return {name: found.digest for name, found in record[1].items()} if record else {}


def remember(path: Path, record: tuple[str, dict[str, AppliedList]] | None) -> None:
    """The lists just committed, so the next plan (the agent's, at once) need not parse
    the file it just wrote."""
    if record is None:
        return
    with contextlib.suppress(OSError):
        st = path.stat()
        _records[path] = ((st.st_mtime_ns, st.st_size, st.st_ino), record)


def _list_records(path: Path) -> tuple[str, dict[str, AppliedList]] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    version = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _records.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        payload = json.loads(path.read_text())
        found = {
            str(item["name"]): AppliedList(str(item["name"]), str(item["digest"]))
            for item in payload["ruleset"].get("lists", ())
        }
        record: tuple[str, dict[str, AppliedList]] | None = (str(payload["backend"]), found)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        record = None
    _records[path] = (version, record)
    return record


def save_agent_state(state: dict[str, Any]) -> None:
    write_atomically(run_dir() / "agent.json", json.dumps(state, default=str))


def load_agent_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((run_dir() / "agent.json").read_text())
    except (OSError, ValueError):
        return None
    return state
