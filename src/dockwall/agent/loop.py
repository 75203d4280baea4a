"""The agent's loop: resync, follow events, reconcile in bursts, repair drift.

Correctness never depends on the agent being fast: the bridge-wide defaults hold every
container the agent has not reconciled yet, and rules stay in the kernel when the agent
stops. Speed only decides how soon a container gets the rules written for it.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docker.errors import DockerException

from dockwall.agent.events import Disconnected, Event, Item, start_pump
from dockwall.backends.base import Plan
from dockwall.compile.compiler import compile_policy
from dockwall.compile.ir import Ruleset
from dockwall.engine import BackendChoice, Engine, Selected
from dockwall.errors import DockwallError
from dockwall.locking import firewall_lock
from dockwall.model.state import Bridge, Container, HostState
from dockwall.policy import Policy, read_policy
from dockwall.signals import signals_deferred
from dockwall.sources.docker_state import DockerReader, connect
from dockwall.sources.interfaces import host_interfaces
from dockwall.statefile import StateError, save_agent_state

Log = Callable[[str], None]
AfterApply = Callable[[Ruleset, list[Container], Selected], None]
STOP_POLL = 0.2  # seconds: a SIGTERM ends the agent within this (plus the work under way)


@dataclass(frozen=True)
class AgentConfig:
    policy_path: Path
    backend: BackendChoice | None = None
    debounce: float = 0.005
    max_delay: float = 0.2
    drift_interval: float = 1.0
    reconnect_max: float = 5.0
    max_policy_bytes: int | None = None


FileVersion = tuple[int, int, int, int] | str


def file_version(path: Path) -> FileVersion:
    """mtime alone misses a rewrite within one clock tick (truncate, then write: a read
    in between sees an empty file and the complete one looks unchanged); size and inode
    catch it, and an editor's write-and-rename too; the type tells a FIFO or device
    swapped in. A file that cannot be stat'ed (deleted) is a version of its own."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc.strerror or exc}"
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Stats:
    """What `dockwall status` shows about the agent."""

    started: str = field(default_factory=now_iso)
    events: int = 0
    reconciles: int = 0
    drift_checks: int = 0
    repairs: int = 0
    last_reconcile: str | None = None
    last_reconcile_ms: float | None = None
    last_error: str | None = None
    backend: str | None = None
    connected: bool = False
    policy: str = ""
    policy_problem: str | None = None


class Agent:
    def __init__(self, config: AgentConfig, engine: Engine, log: Log) -> None:
        self.config = config
        self.engine = engine
        self.log = log
        self.stats = Stats(policy=os.path.realpath(config.policy_path))
        self.policy_seen = file_version(config.policy_path)
        loaded = read_policy(config.policy_path, config.max_policy_bytes)
        self.policy: Policy = loaded.policy
        for warning in loaded.warnings:
            self.log(f"warning: {warning}")
        self.stop = threading.Event()
        self.bridges: dict[str, Bridge] = {}
        self.containers: dict[str, Container] = {}
        self.interfaces: tuple[str, ...] | None = None
        self.ruleset: Ruleset | None = None
        self.selected: Selected | None = None
        self.warned: set[str] = set()
        self.after_apply: list[AfterApply] = []
        self.burst_started: float | None = None  # monotonic time of the burst's first event

    def run(self, stop: threading.Event) -> None:
        """Connect, resync, follow; on any disconnect, back off and start over."""
        self.stop = stop
        backoff = 0.2
        while not stop.is_set():
            try:
                client = connect()
            except DockwallError as exc:
                self.trouble(f"docker unreachable: {exc}")
                stop.wait(backoff)
                backoff = min(backoff * 2, self.config.reconnect_max)
                continue
            backoff = 0.2
            try:
                self.session(DockerReader(client), stop)
            except (DockerException, OSError) as exc:
                # dockerd went away mid-resync or mid-refresh: start over, never die.
                self.trouble(f"lost Docker ({exc}); reconnecting with a full resync")
                stop.wait(backoff)
            finally:
                client.close()
                self.stats.connected = False
                self.save()

    def session(self, reader: DockerReader, stop: threading.Event) -> None:
        items: queue.Queue[Item] = queue.Queue()
        start_pump(reader.client, int(time.time()) - 1, items)
        self.stats.connected = True
        self.resync(reader)
        self.reconcile("resync", everything=True)
        self.follow(reader, items, stop)

    def resync(self, reader: DockerReader) -> None:
        state = reader.state()
        self.bridges = {b.network: b for b in state.bridges}
        self.containers = {c.id: c for c in state.containers}
        self.interfaces = self.read_interfaces()

    def read_interfaces(self) -> tuple[str, ...] | None:
        bridges = {b.interface for b in self.bridges.values()}
        return host_interfaces(self.engine.runner, bridges)

    def follow(self, reader: DockerReader, items: queue.Queue[Item], stop: threading.Event) -> None:
        pending: set[str] = set()
        bridges_changed = False
        first = last = 0.0
        next_drift = time.monotonic() + self.config.drift_interval
        while not stop.is_set():
            now = time.monotonic()
            wait = min(next_drift - now, STOP_POLL)  # idle: still notice a stop request
            if pending or bridges_changed:
                wait = min(last + self.config.debounce, first + self.config.max_delay) - now
            try:
                item = items.get(timeout=max(wait, 0.0))
            except queue.Empty:
                item = None
            if isinstance(item, Disconnected):
                self.trouble(f"lost Docker ({item.reason}); reconnecting with a full resync")
                return
            now = time.monotonic()
            if isinstance(item, Event):
                self.stats.events += 1
                first = first if pending or bridges_changed else now
                last = now
                if item.kind == "network" and item.action in ("create", "destroy"):
                    bridges_changed = True
                if item.container_id:
                    pending.add(item.container_id)
                if now < first + self.config.max_delay:
                    continue
            if pending or bridges_changed:
                self.refresh(reader, pending, bridges_changed)
                self.burst_started = first
                self.reconcile(f"{len(pending)} container event(s)")
                self.burst_started = None
                pending, bridges_changed = set(), False
            if now >= next_drift:
                if self.read_interfaces() != self.interfaces:
                    # Docker's networks are read again first: a new bridge is never
                    # taken for one of the host's own interfaces.
                    bridges_changed = True
                    first = last = now
                self.check_drift()
                next_drift = time.monotonic() + self.config.drift_interval

    def refresh(self, reader: DockerReader, ids: set[str], bridges_changed: bool) -> None:
        """Only the containers that had events are read again, and networks when they changed."""
        if bridges_changed:
            self.bridges = reader.bridges()
            self.interfaces = self.read_interfaces()
        for container_id in ids:
            container = reader.container(container_id, self.bridges)
            if container is None:
                self.containers.pop(container_id, None)
            else:
                self.containers[container_id] = container

    def reconcile(self, reason: str, *, everything: bool = False) -> None:
        """Compile and apply; a failure keeps the rules in force and is retried on drift."""
        started = time.perf_counter()
        try:
            state = HostState(
                tuple(self.bridges.values()), tuple(self.containers.values()), self.interfaces
            )
            compiled = compile_policy(self.policy, state)
            for warning in compiled.warnings:
                if warning not in self.warned:  # once, not again on every event
                    self.log(f"warning: {warning}")
            self.warned = set(compiled.warnings)
            with firewall_lock("dockwall agent", say=self.log, stop=self.stop) as held:
                if not held:
                    return  # stopping: the rules in force stay as they are
                selected, plans = self.load(compiled.ruleset, everything=everything)
        except StateError as exc:  # the rules are in force; only `apply --boot` lags
            self.trouble(str(exc))
            return
        except DockwallError as exc:
            self.ruleset = None  # the next drift check retries with the current state
            self.trouble(f"reconcile ({reason}) failed, previous rules stay in force: {exc}")
            return
        elapsed = (time.perf_counter() - started) * 1000
        changes = sum(len(p.changes) for p in plans)
        self.stats.backend = selected.backend.name
        self.stats.reconciles += 1
        self.stats.last_reconcile = now_iso()
        self.stats.last_reconcile_ms = round(elapsed, 1)
        self.stats.last_error = None
        if changes:
            self.log(f"reconciled ({reason}): {changes} change(s) in {elapsed:.0f} ms")
        for hook in self.after_apply:
            hook(compiled.ruleset, list(self.containers.values()), selected)
        self.save()

    def load(self, ruleset: Ruleset, *, everything: bool) -> tuple[Selected, list[Plan]]:
        """Plans and loads (the caller holds the lock), the state for `apply --boot` in
        step with it (Engine.apply); the ruleset counts as in force from the load on,
        even when only the state could not be saved."""
        if everything or self.selected is None:
            self.selected, plans = self.engine.plan_ruleset(ruleset, self.policy.backend)
        else:
            plans = self.engine.plan_with(self.selected, ruleset)
        self.ruleset = ruleset
        self.engine.apply(self.selected, plans, ruleset)
        return self.selected, plans

    def check_drift(self) -> None:
        """Someone flushed a chain or deleted the table: put ours back."""
        if self.reload_policy():
            self.reconcile("policy file changed")
            return
        if self.ruleset is None or self.selected is None:
            self.reconcile("retry")
            return
        try:
            with firewall_lock("dockwall agent", say=self.log, stop=self.stop) as held:
                if not held:
                    return
                plans = self.engine.plan_with(self.selected, self.ruleset)
                self.stats.drift_checks += 1
                if any(not p.in_sync for p in plans):
                    with signals_deferred():
                        self.engine.load(self.selected, plans)
                    self.stats.repairs += 1
                    changes = sum(len(p.changes) for p in plans)
                    self.log(f"drift repaired: {changes} rule(s) and hook(s) restored")
            self.save()  # the check count too: tests see checks that found nothing
        except DockwallError as exc:
            self.trouble(f"drift check failed: {exc}")

    def reload_policy(self) -> bool:
        """Whether a new policy was read. Whatever the file turns into (a FIFO, nothing,
        an empty or oversized or broken file), the last good policy stays in force and
        each change of the file's state is logged once."""
        seen = file_version(self.config.policy_path)
        if seen == self.policy_seen:
            return False
        self.policy_seen = seen
        try:
            loaded = read_policy(self.config.policy_path, self.config.max_policy_bytes)
        except DockwallError as exc:
            problem = f"policy not reloaded, the previous one stays in force: {exc}"
            if problem != self.stats.policy_problem:
                self.log(f"warning: {problem}")
            self.stats.policy_problem = problem
            self.save()
            return False
        self.stats.policy_problem = None
        self.log(f"policy reloaded from {self.config.policy_path}")
        for warning in loaded.warnings:
            self.log(f"warning: {warning}")
        self.policy = loaded.policy
        return True

    def trouble(self, message: str) -> None:
        self.stats.last_error = message
        self.log(f"error: {message}")
        self.save()

    def save(self) -> None:
        state: dict[str, Any] = {"pid": os.getpid(), **self.stats.__dict__}
        state["containers"] = len(self.containers)
        try:
            save_agent_state(state)
        except OSError as exc:
            self.log(f"cannot write agent state: {exc}")
