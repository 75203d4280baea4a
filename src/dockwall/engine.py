"""The imperative shell around the pure core: read inputs, pick a backend, plan, apply.

Every command goes through here, so they all see the same policy, state and backend,
and bad input is rejected before any backend is touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from dockwall.backends.base import Backend, Plan
from dockwall.backends.iptables import IptablesBackend
from dockwall.backends.nftables import (
    NftablesBackend,
    docker_uses_nftables,
    native_nftables_table,
)
from dockwall.compile.compiler import Compiled, compile_policy
from dockwall.compile.ir import Ruleset
from dockwall.errors import DockwallError
from dockwall.model.state import HostState
from dockwall.policy import Policy, read_policy
from dockwall.policy.listfile import ListContents
from dockwall.policy.model import BACKENDS, BackendChoice
from dockwall.runner import Runner, SubprocessRunner
from dockwall.signals import signals_deferred
from dockwall.sources.docker_state import connect, read_state
from dockwall.sources.interfaces import host_interfaces
from dockwall.statedir import state_dir
from dockwall.statefile import (
    LAST_APPLIED,
    PENDING,
    Applied,
    StateError,
    applied_digests,
    applied_list,
    commit_pending,
    discard_pending,
    forget_applied,
    load_applied,
    load_pending,
    save_pending,
)
from dockwall.statelists import stored_list

DEFAULT_POLICY = Path("/etc/dockwall/policy.yaml")


@dataclass(frozen=True)
class Selected:
    """The backend in charge, why it was picked, and the others (to clean up on a switch)."""

    backend: Backend
    reason: str
    others: tuple[Backend, ...]


def select_backend(choice: BackendChoice, runner: Runner) -> Selected:
    """`auto` follows Docker: its nftables firewall backend has no DOCKER-USER to hook.
    Where Docker writes no iptables chains at all, it follows the host's own firewall."""
    nft = NftablesBackend(runner)
    iptables = IptablesBackend(runner, recorded=lambda name: applied_list(name, "iptables"))
    if choice == "nftables":
        return Selected(nft, "chosen with --backend or the policy", (iptables,))
    if choice == "iptables":
        return Selected(iptables, f"chosen ({iptables.variant.reason})", (nft,))
    if docker_uses_nftables(runner):
        return Selected(nft, "Docker runs its nftables firewall backend", (iptables,))
    native = None if iptables.variant.docker_found else native_nftables_table(runner)
    if native is not None:
        reason = f"Docker writes no iptables chains and the host runs nftables (table {native})"
        return Selected(nft, reason, (iptables,))
    return Selected(iptables, f"Docker uses iptables ({iptables.variant.reason})", (nft,))


@dataclass(frozen=True)
class Inputs:
    policy: Policy
    state: HostState
    compiled: Compiled
    file_warnings: tuple[str, ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        """About the policy file (who may write it), then about the compiled rules."""
        return (*self.file_warnings, *self.compiled.warnings)

    @property
    def list_lines(self) -> dict[str, int]:
        return list_lines(self.policy)


def list_lines(policy: Policy) -> dict[str, int]:
    """Each list file read without a line skipped: its line count, by digest. Saved with
    its contents, so the next run takes them for that file (remembered_list)."""
    return {c.digest: c.lines for c in policy.loaded_lists.values() if not c.skipped}


def with_interfaces(state: HostState, runner: Runner) -> HostState:
    """The host's own interfaces, read after Docker's networks so none is mistaken for
    one of the host's."""
    bridges = {b.interface for b in state.bridges}
    return replace(state, interfaces=host_interfaces(runner, bridges))


def read_inputs(
    policy_path: Path, max_bytes: int | None = None, runner: Runner | None = None
) -> Inputs:
    """The policy is read and validated before Docker is even asked."""
    loaded = read_policy(policy_path, max_bytes, remembered_list, applied_contents)
    state = with_interfaces(read_host_state(), runner or SubprocessRunner())
    return Inputs(loaded.policy, state, compile_policy(loaded.policy, state), loaded.warnings)


def remembered_list(digest: str) -> ListContents | None:
    """The contents of a list file with this digest as the last apply saved them, so an
    unchanged million-line file is hashed, not parsed again. Only contents read without
    a skipped line are kept that way (a skipped line's warning must be shown again);
    the state directory is trusted as much as for `apply --boot`."""
    contents = stored_contents(digest)
    return contents if contents is not None and contents.lines >= 0 else None


def applied_contents(name: str) -> ListContents | None:
    """List `name` as the last apply loaded it (any backend's: a backend uses the change
    read against it only when its own record has that digest), from the state directory."""
    digest = applied_digests().get(name)
    return stored_contents(digest) if digest else None


def stored_contents(digest: str) -> ListContents | None:
    stored = stored_list(digest)
    if stored is None:
        return None
    return ListContents(
        file="",
        v4=stored.v4,
        v6=stored.v6,
        interval4=stored.interval4,
        interval6=stored.interval6,
        digest=digest,
        lines=stored.lines,
    )


def read_host_state() -> HostState:
    """Docker's containers and networks, read once through a short-lived client."""
    client = connect()
    try:
        return read_state(client)
    finally:
        client.close()


def bridge_netfilter(runner: Runner) -> bool:
    """Whether bridged (container to container) packets pass through iptables/nftables."""
    paths = ["/proc/sys/net/bridge/bridge-nf-call-iptables"]
    result = runner.run(["cat", *paths], check=False)
    return result.returncode == 0 and result.stdout.split()[:1] == ["1"]


@dataclass(frozen=True)
class Booted:
    """What `apply --boot` found and did."""

    selected: Selected
    plans: list[Plan]
    note: str


def in_force(plans: list[Plan]) -> bool:
    """The plans' ruleset is live: nothing to change but leftovers of an interrupted
    load (sets no rule uses), which loading the plans then removes."""
    return all(c.leftover for p in plans for c in p.changes)


def _preferred(applied: Applied) -> BackendChoice:
    return "nftables" if applied.backend == "nftables" else "iptables"


@dataclass(frozen=True)
class Engine:
    runner: Runner
    choice: BackendChoice | None = None

    def selected(self, preferred: BackendChoice = "auto") -> Selected:
        return select_backend(self.choice or preferred, self.runner)

    def plan(self, inputs: Inputs) -> tuple[Selected, list[Plan]]:
        return self.plan_ruleset(inputs.compiled.ruleset, inputs.policy.backend)

    def plan_ruleset(
        self, ruleset: Ruleset, preferred: BackendChoice = "auto"
    ) -> tuple[Selected, list[Plan]]:
        """The plan of the chosen backend, plus removing any other backend's leftovers."""
        selected = self.selected(preferred)
        plans = self.plan_with(selected, ruleset)
        plans += [other.plan_reset() for other in selected.others if other.installed()]
        return selected, plans

    def plan_with(self, selected: Selected, ruleset: Ruleset) -> list[Plan]:
        """The chosen backend's plan alone: the agent's hot path, backend chosen once."""
        if ruleset.isolate_peers and not bridge_netfilter(self.runner):
            raise DockwallError(
                "defaults.peers: deny needs br_netfilter, or traffic between containers on "
                "one network never reaches the firewall: run `modprobe br_netfilter` and "
                "`sysctl -w net.bridge.bridge-nf-call-iptables=1 "
                "net.bridge.bridge-nf-call-ip6tables=1`"
            )
        return [selected.backend.plan(ruleset)]

    def apply(
        self,
        selected: Selected,
        plans: list[Plan],
        ruleset: Ruleset,
        list_lines: Mapping[str, int] | None = None,
    ) -> None:
        """Loads the plans and remembers the ruleset for `apply --boot`, in step: the
        ruleset is recorded as pending before the load and committed after it, with
        SIGTERM/SIGINT held until both are done. `list_lines` (Inputs.list_lines) lets
        the saved list contents stand for their files in the next run.

        The state is a record, the firewall is the job: a state directory that cannot be
        written does not stop the load, it ends in a StateError (exit code 3) once the
        rules are in force, so nobody trusts `apply --boot` without being told."""
        with signals_deferred():
            problem: StateError | None = None
            try:
                save_pending(selected.backend.name, ruleset, list_lines)
            except OSError as exc:
                problem = StateError(state_dir() / PENDING, exc)
            try:
                self.load(selected, plans)
            except BaseException:
                discard_pending()
                raise
            if problem is None:
                try:
                    commit_pending()
                except OSError as exc:
                    problem = StateError(state_dir() / LAST_APPLIED, exc)
        if problem is not None:
            raise problem

    def load(self, selected: Selected, plans: list[Plan]) -> None:
        backends = {b.name: b for b in (selected.backend, *selected.others)}
        for plan in plans:
            if not plan.in_sync:
                backends[plan.backend].apply(plan)

    def boot(self) -> Booted:
        """Restores the last applied ruleset; needs neither Docker nor the policy file.

        A pending ruleset means a load was interrupted (SIGKILL, power loss) between
        handing it to the kernel and committing it. Whichever of the two is live right
        now is the one in force and becomes the state; when neither is (after a
        reboot), the pending one is restored: it was the last one asked for."""
        pending = load_pending()
        if pending is None:
            return self.restore(load_applied())
        selected, plans = self.plan_applied(pending)
        if in_force(plans):
            self.apply(selected, plans, pending.ruleset)
            return Booted(selected, plans, "the rules of an interrupted apply are live; kept")
        with contextlib.suppress(DockwallError):
            selected, plans = self.plan_applied(load_applied())
            if in_force(plans):
                with signals_deferred():
                    self.load(selected, plans)
                    discard_pending()
                return Booted(selected, plans, "the last applied rules are live; kept")
        return self.restore(pending, pending=True)

    def plan_applied(self, applied: Applied) -> tuple[Selected, list[Plan]]:
        return self.plan_ruleset(applied.ruleset, _preferred(applied))

    def restore(self, applied: Applied, *, pending: bool = False) -> Booted:
        selected, plans = self.plan_applied(applied)
        if pending:
            self.apply(selected, plans, applied.ruleset)
            note = "restored the rules of an interrupted apply"
        else:
            with signals_deferred():
                self.load(selected, plans)
            note = "restored the last applied rules"
        return Booted(selected, plans, note)

    def reset_plans(self, selected: Selected | None = None) -> list[Plan]:
        """Every backend's, whichever is chosen: reset removes all that dockwall added."""
        selected = selected or self.selected()
        return [b.plan_reset() for b in (selected.backend, *selected.others) if b.installed()]

    def reset(self) -> list[Plan]:
        """The backend is detected once (several subprocesses) for the plans and the load."""
        selected = self.selected()
        plans = self.reset_plans(selected)
        with signals_deferred():
            self.load(selected, plans)
            forget_applied()
        return plans


def default_engine(choice: BackendChoice | None) -> Engine:
    if choice is not None and choice not in BACKENDS:
        expected = ", ".join(BACKENDS[:-1]) + f" or {BACKENDS[-1]}"
        raise DockwallError(f"--backend {choice}: expected {expected}")
    return Engine(SubprocessRunner(), choice)
