"""What dockwall remembers between runs: the last applied ruleset and the agent's state.

The last applied ruleset is what `apply --boot` restores before Docker starts, so the
firewall holds from the first packet after a reboot. It must never disagree with what
is in force without anyone being told, so a load is a small transaction on disk too:
the new ruleset is written as *pending* before the load, promoted to *last applied*
by a rename once the load succeeded, and removed if the load failed. A process killed
in between leaves the pending file, and `apply --boot` decides which of the two is
live (see Engine.boot). Every write is a temporary file in the same directory, fsynced
and renamed, so a crash never leaves half a file.

Both locations can be moved with environment variables, which the lab uses to give
each lab its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from dockwall.compile.ir import Ruleset
from dockwall.errors import DockwallError

RULESET = TypeAdapter(Ruleset)
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


def state_dir() -> Path:
    return Path(os.environ.get("DOCKWALL_STATE_DIR", "/var/lib/dockwall"))


def run_dir() -> Path:
    return Path(os.environ.get("DOCKWALL_RUN_DIR", "/run/dockwall"))


@dataclass(frozen=True)
class Applied:
    backend: str
    ruleset: Ruleset


def _fsync_dir(directory: Path) -> None:
    """A rename is durable only once the directory holding it is on disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str) -> None:
    """A temporary file next to `path`, fsynced and renamed over it: a crash leaves the
    old file or the new one, never half of one, and never a stray temporary file name
    another writer could collide with."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _payload(backend: str, ruleset: Ruleset) -> str:
    return json.dumps({"backend": backend, "ruleset": json.loads(RULESET.dump_json(ruleset))})


def save_pending(backend: str, ruleset: Ruleset) -> None:
    """Before a load: the ruleset about to be handed to the kernel."""
    write_atomically(state_dir() / PENDING, _payload(backend, ruleset))


def commit_pending() -> None:
    """After a successful load: the pending ruleset becomes the one boot restores."""
    directory = state_dir()
    os.replace(directory / PENDING, directory / LAST_APPLIED)
    _fsync_dir(directory)


def discard_pending() -> None:
    """After a failed (rolled back) load: the last applied ruleset is still the live one."""
    with contextlib.suppress(OSError):
        (state_dir() / PENDING).unlink(missing_ok=True)


def save_applied(backend: str, ruleset: Ruleset) -> None:
    write_atomically(state_dir() / LAST_APPLIED, _payload(backend, ruleset))


def forget_applied() -> None:
    """After a reset there is nothing to restore at boot, nor learned addresses for the
    next agent to put back."""
    for name in (PENDING, LAST_APPLIED):
        (state_dir() / name).unlink(missing_ok=True)
    (run_dir() / FQDN_LEARNED).unlink(missing_ok=True)


def _read(path: Path) -> Applied:
    payload = json.loads(path.read_text())
    return Applied(str(payload["backend"]), RULESET.validate_python(payload["ruleset"]))


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


def save_agent_state(state: dict[str, Any]) -> None:
    write_atomically(run_dir() / "agent.json", json.dumps(state, default=str))


def load_agent_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((run_dir() / "agent.json").read_text())
    except (OSError, ValueError):
        return None
    return state
