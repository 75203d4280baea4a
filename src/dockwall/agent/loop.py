"""The agent's loop: resync, follow events, reconcile in bursts, repair drift.

Correctness never depends on the agent being fast: the bridge-wide defaults hold every
container the agent has not reconciled yet, and rules stay in the kernel when the agent
stops. Speed only decides how soon a container gets the rules written for it.

Docker, the firewall and the clock are given to the agent (`seams`), and when to act is
decided by `timing.step`, so the loop is unit-tested without Docker or root.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docker.errors import DockerException

from dockwall.agent import timing
from dockwall.agent.driftgate import DriftGate, Stamp
from dockwall.agent.events import Disconnected
from dockwall.agent.listwatch import ListWatch
from dockwall.agent.seams import Clock, Connect, Firewall, Session, SystemClock
from dockwall.agent.services import (
    AfterApply,
    Enforced,
    Hosting,
    Service,
    notify,
    start_services,
    stop_services,
)
from dockwall.agent.timing import BACKOFF_START, LoopState, Timing
from dockwall.backends.base import Plan
from dockwall.compile.compiler import Compiled, compile_policy
from dockwall.compile.ir import Ruleset
from dockwall.engine import Selected, list_lines, remembered_list
from dockwall.errors import DockwallError
from dockwall.locking import firewall_lock
from dockwall.model.state import Bridge, Container, HostState, Mesh
from dockwall.policy import Policy, read_policy
from dockwall.sources.interfaces import host_interfaces
from dockwall.sources.swarm import GWBRIDGE
from dockwall.statefile import StateError, save_agent_state

Log = Callable[[str], None]
LINKS_BACKSTOP = 30.0  # seconds: interfaces read at least this often with a link watch


@dataclass(frozen=True)
class AgentConfig:
    """The backend is not here: the Engine given to the agent carries `--backend`."""

    policy_path: Path
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
    drift_listings: int = 0  # checks that read the ruleset (the rest: driftgate)
    repairs: int = 0
    last_reconcile: str | None = None
    last_reconcile_ms: float | None = None
    last_error: str | None = None
    backend: str | None = None
    connected: bool = False
    policy: str = ""
    policy_problem: str | None = None


class Agent:
    """Keeps the firewall equal to the policy for the containers `connect` reports.

    `engine` plans and applies (the Engine in production), `connect` opens a Docker
    session, `clock` measures and sleeps; `services` run alongside the loop and
    `after_apply` hooks hear of every ruleset put in force (see `services`)."""

    def __init__(
        self,
        config: AgentConfig,
        engine: Firewall,
        log: Log,
        *,
        connect: Connect,
        clock: Clock | None = None,
        services: Sequence[Service] = (),
        after_apply: Sequence[AfterApply] = (),
        generation: Callable[[], Stamp] | None = None,
        links: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.timing = Timing(config.debounce, config.max_delay, config.drift_interval)
        self.engine = engine
        self.log = log
        self.connect = connect
        self.clock: Clock = clock or SystemClock()
        self.services = tuple(services)
        self.after_apply = tuple(after_apply)
        self.stats = Stats(policy=os.path.realpath(config.policy_path))
        self.policy_seen = file_version(config.policy_path)
        loaded = read_policy(config.policy_path, config.max_policy_bytes, remembered_list)
        self.policy: Policy = loaded.policy
        self.stop = threading.Event()
        self.lists = ListWatch(
            config.policy_path, self.policy, sleep=lambda s: self.clock.wait(self.stop, s)
        )
        self.gate = DriftGate(generation)
        self.phases = (0.0, 0.0)  # seconds the last enforce planned, then loaded
        self.links = links
        self.links_read = float("-inf")
        for warning in loaded.warnings:
            self.log(f"warning: {warning}")
        self.bridges: dict[str, Bridge] = {}
        self.containers: dict[str, Container] = {}
        self.interfaces: tuple[str, ...] | None = None
        self.mesh: Mesh | None = None
        self.ruleset: Ruleset | None = None
        self.selected: Selected | None = None
        self.warned: set[str] = set()
        self.burst_started: float | None = None  # clock.now() of the burst being enforced

    def run(self, stop: threading.Event) -> None:
        """The services run for as long as the loop does, whatever ends it."""
        self.stop = stop
        started = start_services(self.services, Hosting(stop, self.log))
        try:
            self.follow_docker(stop)
        finally:
            stop_services(started, self.log)

    def follow_docker(self, stop: threading.Event) -> None:
        """Connect, resync, follow; on any disconnect, back off and start over."""
        backoff = BACKOFF_START
        while not stop.is_set():
            try:
                session = self.connect()
            except DockwallError as exc:
                self.trouble(f"docker unreachable: {exc}")
                self.clock.wait(stop, backoff)
                backoff = timing.next_backoff(backoff, self.config.reconnect_max)
                continue
            backoff = BACKOFF_START
            try:
                self.session(session, stop)
            except (DockerException, OSError) as exc:
                # dockerd went away mid-resync or mid-refresh: start over, never die.
                self.trouble(f"lost Docker ({exc}); reconnecting with a full resync")
                self.clock.wait(stop, backoff)
            finally:
                session.close()
                self.stats.connected = False
                self.save()

    def session(self, session: Session, stop: threading.Event) -> None:
        self.stats.connected = True
        self.resync(session)
        self.reconcile("resync", everything=True)
        self.follow(session, stop)

    def resync(self, session: Session) -> None:
        state = session.state()
        self.bridges = {b.network: b for b in state.bridges}
        self.containers = {c.id: c for c in state.containers}
        self.interfaces = self.read_interfaces()
        self.mesh = state.mesh

    def links_may_differ(self, now: float) -> bool:
        """Whether to read the interfaces at this drift check: always without a link
        watch, else when it saw a change, or `LINKS_BACKSTOP` seconds after the last read."""
        if self.links is None or now - self.links_read >= LINKS_BACKSTOP or self.links():
            self.links_read = now
            return True
        return False

    def read_interfaces(self) -> tuple[str, ...] | None:
        bridges = {b.interface for b in self.bridges.values()}
        return host_interfaces(self.engine.runner, bridges)

    def follow(self, session: Session, stop: threading.Event) -> None:
        """Waits and acts as `timing.step` decides, until stopped or Docker is lost."""
        state = timing.start(self.clock.now(), self.timing)
        while not stop.is_set():
            item = session.next_item(timing.wait_time(state, self.clock.now(), self.timing))
            if isinstance(item, Disconnected):
                self.trouble(f"lost Docker ({item.reason}); reconnecting with a full resync")
                return
            if item is not None:
                self.stats.events += 1
            now = self.clock.now()
            decided = timing.step(state, now, item, self.timing)
            state = decided.state
            if decided.reconcile is not None:
                burst = decided.reconcile
                self.refresh(session, burst.containers, burst.bridges)
                self.burst_started = burst.first  # read by after-apply hooks (latency)
                self.reconcile(f"{len(burst.containers)} container event(s)")
                self.burst_started = None
            if decided.drift:
                state = self.drift(state, now)

    def drift(self, state: LoopState, now: float) -> LoopState:
        if self.links_may_differ(now) and self.read_interfaces() != self.interfaces:
            state = timing.bridges_changed(state, now)
        self.check_drift()
        return timing.drift_checked(state, self.clock.now(), self.timing)

    def refresh(self, session: Session, ids: frozenset[str], bridges_changed: bool) -> None:
        """Only the containers that had events are read again, and networks when they changed."""
        if bridges_changed:
            self.bridges = session.bridges()
            self.interfaces = self.read_interfaces()
        if GWBRIDGE in self.bridges:  # a worker hears of no service: read the mesh each time
            self.mesh = session.mesh()
        for container_id in ids:
            container = session.container(container_id, self.bridges)
            if container is None:
                self.containers.pop(container_id, None)
            else:
                self.containers[container_id] = container

    def host_state(self) -> HostState:
        return HostState(
            tuple(self.bridges.values()),
            tuple(self.containers.values()),
            self.interfaces,
            self.mesh,
        )

    def reconcile(self, reason: str, *, everything: bool = False) -> None:
        """Compile and apply; a failure keeps the rules in force and is retried on drift."""
        started = time.perf_counter()
        state = self.host_state()
        try:
            compiled = compile_policy(self.policy, state)
            self.warn_once(compiled.warnings)
            plans = self.enforce(compiled.ruleset, reselect=everything)
        except StateError as exc:  # the rules are in force; only `apply --boot` lags
            self.trouble(str(exc))
            self.applied(state, compiled, reason)
            return
        except DockwallError as exc:
            self.ruleset = None  # the next drift check retries with the current state
            self.trouble(f"reconcile ({reason}) failed, previous rules stay in force: {exc}")
            return
        if plans is None:
            return  # stopping: the rules in force stay as they are
        elapsed = (time.perf_counter() - started) * 1000
        changes = sum(len(p.changes) for p in plans)
        self.stats.reconciles += 1
        self.stats.last_reconcile = now_iso()
        self.stats.last_reconcile_ms = round(elapsed, 1)
        self.stats.last_error = None
        if changes:
            plan_ms, load_ms = (1000 * t for t in self.phases)
            lists = [c.text for p in plans for c in p.changes if c.text.startswith("list ")]
            self.log(
                f"reconciled ({reason}): {changes} change(s) in {elapsed:.0f} ms "
                f"(plan {plan_ms:.0f} ms, load and state {load_ms:.0f} ms)"
                + "".join(f"; {text}" for text in lists)
            )
        self.applied(state, compiled, reason)
        self.save()

    def warn_once(self, warnings: tuple[str, ...]) -> None:
        """Each warning once, not again on every event, until it has gone away."""
        for warning in warnings:
            if warning not in self.warned:
                self.log(f"warning: {warning}")
        self.warned = set(warnings)

    def applied(self, state: HostState, compiled: Compiled, reason: str) -> None:
        assert self.selected is not None  # set by the apply that just happened
        self.stats.backend = self.selected.backend.name
        enforced = Enforced(self.policy, state, compiled, self.selected.backend.name, reason)
        notify(self.after_apply, enforced, self.log)

    def enforce(
        self, ruleset: Ruleset, *, reselect: bool = False, repair: bool = False
    ) -> list[Plan] | None:
        """The agent's one way to change the firewall: under the lock, plan and apply
        through `Engine.apply` (the state for `apply --boot` in step with the load).
        None when stopping while waiting for the lock. `reselect` picks the backend
        again (at a resync); `repair` applies only when the live rules drifted, so an
        idle drift check writes nothing. The ruleset counts as in force from the load
        on, even when only the state could not be saved (StateError)."""
        with firewall_lock("dockwall agent", say=self.log, stop=self.stop) as held:
            if not held:
                return None
            started = time.perf_counter()
            if reselect or self.selected is None:
                self.selected, plans = self.engine.plan_ruleset(ruleset, self.policy.backend)
            else:
                plans = self.engine.plan_with(self.selected, ruleset)
            planned = time.perf_counter()
            self.ruleset = ruleset
            if not repair or any(not p.in_sync for p in plans):
                self.gate.forget()
                self.engine.apply(self.selected, plans, ruleset, list_lines(self.policy))
            self.phases = (planned - started, time.perf_counter() - planned)
            return plans

    def check_drift(self) -> None:
        """Someone flushed a chain or deleted the table: put ours back."""
        if self.reload_policy():
            self.reconcile("policy file changed")
            return
        if self.ruleset is None or self.selected is None:
            self.reconcile("retry")
            return
        stamp = self.gate.stamp() if self.selected.backend.name == "nftables" else None
        if not self.lists.deep_due(self.policy) and self.gate.unchanged(stamp, self.clock.now()):
            self.stats.drift_checks += 1
            self.save()
            return
        self.stats.drift_listings += 1
        try:
            with self.lists.drift_check(self.policy):
                plans = self.enforce(self.ruleset, repair=True)
        except StateError as exc:  # repaired; only the record for `apply --boot` lags
            self.stats.drift_checks += 1
            self.stats.repairs += 1
            self.trouble(str(exc))
            return
        except DockwallError as exc:
            self.trouble(f"drift check failed: {exc}")
            return
        if plans is None:
            return
        self.stats.drift_checks += 1
        changes = sum(len(p.changes) for p in plans)
        if changes:
            self.stats.repairs += 1
            self.log(f"drift repaired: {changes} rule(s) and hook(s) restored")
        else:
            self.gate.found_in_force(stamp, self.clock.now())
        self.save()  # the check count too: tests see checks that found nothing

    def reload_policy(self) -> bool:
        """Whether a new policy was read. Whatever the file turns into (a FIFO, nothing,
        an empty or oversized or broken file), the last good policy stays in force and
        each change of the file's state is logged once."""
        seen = file_version(self.config.policy_path)
        lists = self.lists.poll(self.policy)
        if lists == "unsettled" or (seen == self.policy_seen and lists == "same"):
            return False
        self.policy_seen = seen
        try:
            loaded = read_policy(
                self.config.policy_path,
                self.config.max_policy_bytes,
                remembered_list,
                previous=self.policy.loaded_lists.get,
            )
        except DockwallError as exc:
            self.lists.failed()
            problem = f"policy not reloaded, the previous one stays in force: {exc}"
            if problem != self.stats.policy_problem:
                self.log(f"warning: {problem}")
            self.stats.policy_problem = problem
            self.save()
            return False
        self.stats.policy_problem = None
        self.log(f"policy reloaded from {self.config.policy_path} (and its lists)")
        for warning in loaded.warnings:
            self.log(f"warning: {warning}")
        self.policy = loaded.policy
        self.lists.read(self.policy)
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
