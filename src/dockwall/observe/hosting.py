"""Starting the observe services beside the agent: the drop log (and the web listener).

The agent only knows a hook after each apply; what runs on threads of its own lives
here, so the reconcile loop never waits for a log write or a scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from dockwall.agent.loop import Agent
from dockwall.compile.ir import Ruleset
from dockwall.engine import Selected
from dockwall.model.state import Container
from dockwall.observe.history import AddressHistory
from dockwall.observe.journal import Journal
from dockwall.observe.service import DropLogService
from dockwall.statefile import run_dir

Log = Callable[[str], None]


def start_drop_log(agent: Agent, log: Log, stop: threading.Event) -> DropLogService:
    """The service is told of every apply and reads NFLOG on a daemon thread."""
    directory = run_dir()
    directory.mkdir(parents=True, exist_ok=True)
    service = DropLogService(
        agent.config.policy_path.name,
        AddressHistory(directory / "addresses.json"),
        Journal(directory / "drops.jsonl"),
        log,
    )

    def applied(ruleset: Ruleset, containers: list[Container], selected: Selected) -> None:
        service.applied(ruleset, containers, selected.backend.counters)

    agent.after_apply.append(applied)
    threading.Thread(target=service.run, args=(stop,), name="drop-log", daemon=True).start()
    return service
