"""What dockwall remembers between runs: the last applied ruleset and the agent's state.

The last applied ruleset is what `apply --boot` restores before Docker starts, so the
firewall holds from the first packet after a reboot. Both locations can be moved with
environment variables, which the lab uses to give each lab its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from dockwall.compile.ir import Ruleset
from dockwall.errors import DockwallError

RULESET = TypeAdapter(Ruleset)


def state_dir() -> Path:
    return Path(os.environ.get("DOCKWALL_STATE_DIR", "/var/lib/dockwall"))


def run_dir() -> Path:
    return Path(os.environ.get("DOCKWALL_RUN_DIR", "/run/dockwall"))


@dataclass(frozen=True)
class Applied:
    backend: str
    ruleset: Ruleset


def write_atomically(path: Path, text: str) -> None:
    """Write then rename, so a crash never leaves half a file for the next boot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def save_applied(backend: str, ruleset: Ruleset) -> None:
    payload = {"backend": backend, "ruleset": json.loads(RULESET.dump_json(ruleset))}
    write_atomically(state_dir() / "last-applied.json", json.dumps(payload))


def forget_applied() -> None:
    """After a reset there is nothing to restore at boot."""
    (state_dir() / "last-applied.json").unlink(missing_ok=True)


def load_applied() -> Applied:
    path = state_dir() / "last-applied.json"
    try:
        payload = json.loads(path.read_text())
        return Applied(str(payload["backend"]), RULESET.validate_python(payload["ruleset"]))
    except FileNotFoundError as exc:
        raise DockwallError(f"{path}: nothing applied yet, so nothing to restore") from exc
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise DockwallError(f"{path}: unreadable ({exc}); run dockwall apply") from exc


def save_agent_state(state: dict[str, Any]) -> None:
    write_atomically(run_dir() / "agent.json", json.dumps(state, default=str))


def load_agent_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((run_dir() / "agent.json").read_text())
    except (OSError, ValueError):
        return None
    return state
