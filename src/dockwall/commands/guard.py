"""A running agent owns the firewall: `apply` or `reset` behind its back is undone.

The agent compares the live rules with its own policy every second and puts its rules
back, so an `apply` of another file would print success and be silently reverted
within seconds. The agent records in agent.json which policy it runs; a command that
would fight it is refused with the way to change the agent's policy instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dockwall.errors import DockwallError
from dockwall.statefile import load_agent_state

FORCE_HELP = (
    "Go ahead although a running agent enforces another policy (it puts its own rules "
    "back at its next check, within seconds)."
)


def running_agent() -> dict[str, Any] | None:
    """agent.json, if the process that wrote it is still a dockwall agent (a pid reused
    by some other program after a crash does not count)."""
    state = load_agent_state()
    if state is None or not isinstance(state.get("pid"), int) or state["pid"] == os.getpid():
        return None
    try:
        argv = Path(f"/proc/{state['pid']}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return state if b"agent" in argv and any(b"dockwall" in a for a in argv) else None


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_against_agent(command: str, policy: Path | None, *, force: bool) -> None:
    """Raises unless no agent runs, it runs `policy` itself, or `force` is set."""
    state = running_agent()
    if force or state is None:
        return
    theirs = state.get("policy")
    if policy is not None and isinstance(theirs, str) and same_file(policy, Path(theirs)):
        return
    raise DockwallError(
        f"the dockwall agent (pid {state['pid']}) enforces {theirs} and would undo this "
        f"{command} within seconds. To change what it enforces, edit {theirs} (it reloads "
        "it by itself), or restart it with -f pointing at the new file; to stop it, "
        f"systemctl stop dockwall-agent. Use --force to {command} anyway."
    )
