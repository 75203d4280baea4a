"""The imperative shell around the pure core: read inputs, pick a backend, plan, apply.

Every command goes through here, so they all see the same policy, state and backend,
and bad input is rejected before any backend is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dockwall.backends.base import Backend, Plan
from dockwall.backends.iptables import IptablesBackend
from dockwall.compile.compiler import Compiled, compile_policy
from dockwall.errors import DockwallError
from dockwall.model.state import HostState
from dockwall.policy import Policy, load_policy
from dockwall.runner import Runner, SubprocessRunner
from dockwall.sources.docker_state import connect, read_state

BackendChoice = Literal["auto", "iptables", "nftables"]
DEFAULT_POLICY = Path("/etc/dockwall/policy.yaml")


@dataclass(frozen=True)
class Selected:
    """The backend in charge, why it was picked, and the others (to clean up on a switch)."""

    backend: Backend
    reason: str
    others: tuple[Backend, ...]


def select_backend(choice: BackendChoice, runner: Runner) -> Selected:
    try:
        from dockwall.backends.nftables import NftablesBackend, docker_uses_nftables
    except ImportError:
        iptables = IptablesBackend(runner)
        return Selected(iptables, iptables.variant.reason, ())
    nft = NftablesBackend(runner)
    if choice == "nftables" or (choice == "auto" and docker_uses_nftables(runner)):
        reason = "chosen" if choice == "nftables" else "Docker runs its nftables firewall backend"
        return Selected(nft, reason, (IptablesBackend(runner),))
    iptables = IptablesBackend(runner)
    reason = "chosen" if choice == "iptables" else "Docker uses iptables"
    return Selected(iptables, f"{reason} ({iptables.variant.reason})", (nft,))


@dataclass(frozen=True)
class Inputs:
    policy: Policy
    state: HostState
    compiled: Compiled


def read_inputs(policy_path: Path) -> Inputs:
    """The policy is read and validated before Docker is even asked."""
    policy = load_policy(policy_path)
    client = connect()
    try:
        state = read_state(client)
    finally:
        client.close()
    return Inputs(policy, state, compile_policy(policy, state))


@dataclass(frozen=True)
class Engine:
    runner: Runner
    choice: BackendChoice | None = None

    def selected(self, policy: Policy | None) -> Selected:
        choice = self.choice or (policy.backend if policy else "auto")
        return select_backend(choice, self.runner)

    def plan(self, inputs: Inputs) -> tuple[Selected, list[Plan]]:
        """The plan of the chosen backend, plus removing any other backend's leftovers."""
        selected = self.selected(inputs.policy)
        plans = [selected.backend.plan(inputs.compiled.ruleset)]
        plans += [other.plan_reset() for other in selected.others if other.installed()]
        return selected, plans

    def apply(self, selected: Selected, plans: list[Plan]) -> None:
        backends = {b.name: b for b in (selected.backend, *selected.others)}
        for plan in plans:
            if not plan.in_sync:
                backends[plan.backend].apply(plan)

    def reset_plans(self) -> list[Plan]:
        selected = self.selected(None)
        return [b.plan_reset() for b in (selected.backend, *selected.others) if b.installed()]

    def reset(self) -> list[Plan]:
        selected = self.selected(None)
        plans = self.reset_plans()
        self.apply(selected, plans)
        return plans


def default_engine(choice: BackendChoice | None) -> Engine:
    if choice not in (None, "auto", "iptables", "nftables"):
        raise DockwallError(f"--backend {choice}: expected auto, iptables or nftables")
    return Engine(SubprocessRunner(), choice)
