"""`dockwall agent`: keep the firewall equal to the policy while Docker changes."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated

import typer

from dockwall.agent.loop import Agent, AgentConfig
from dockwall.commands.options import DEFAULT, BackendOption, MaxBytesOption, PolicyOption
from dockwall.engine import default_engine
from dockwall.observe.hosting import start_drop_log


def log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    sys.stderr.write(f"{stamp} dockwall-agent: {message}\n")
    sys.stderr.flush()


def agent(
    policy: PolicyOption = DEFAULT,
    backend: BackendOption = None,
    drift_interval: Annotated[
        float, typer.Option(help="Seconds between checks that our rules are still in place.")
    ] = 1.0,
    max_policy_bytes: MaxBytesOption = None,
) -> None:
    """Follow Docker's events and keep the firewall equal to the policy.

    Reconciles on container start/die/destroy and network connect/disconnect (bursts are
    batched), reconnects to dockerd with a full resync, restores our rules within
    seconds if anything removes them, and reloads the policy file when it changes.
    Stopping the agent leaves the rules in force. SIGTERM/SIGINT stop it cleanly (a
    transaction under way is finished first).

    Whatever happens to the policy file later (deleted, truncated, a FIFO, too large,
    unparsable), the last good policy stays in force, drift is still repaired, and each
    change of the file's state is logged once. Each reconcile takes the firewall lock
    that `apply` and `reset` take, so they never interleave.
    """
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        log(f"stopping on signal {signum}; the rules stay in force")
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    config = AgentConfig(
        policy, backend, drift_interval=drift_interval, max_policy_bytes=max_policy_bytes
    )
    runner = Agent(config, default_engine(backend), log)
    start_drop_log(runner, log, stop)
    log(f"started with {policy}")
    runner.run(stop)
