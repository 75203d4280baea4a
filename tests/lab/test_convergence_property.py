"""Property, in a real lab: after `apply`, `plan --detailed-exitcode` exits 0, for any policy.

Random policies come from the whole policy language (tests/lab/policy_strategies.py):
CIDRs of every length in both families (/0, /32, /128, covered and touching ones),
single ports, ranges, lists, udp, icmp; ingress and egress lists, allow and deny;
from_containers / to_containers with `defaults.peers: deny`; compose replicas; trusted
and capped container labels. They are applied to a lab running the containers they
name, one after another (each apply starts from the previous example's rules, as on a
real host), and after each apply the plan must be empty.

apply and plan run in-process, through the same Engine calls the CLI makes, against
the live lab ruleset (a CLI process per step would cost most of the time budget); every
CHECK_CLI_EVERY-th example also runs the real `dockwall plan --detailed-exitcode`.

Each backend runs a fixed seed and a fresh one, EXAMPLES each. The fresh seed is printed;
replay a failure with DOCKWALL_PROPERTY_SEED=<seed>.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from dockwall.backends.base import Plan
from dockwall.compile.compiler import compile_policy
from dockwall.engine import Engine, with_interfaces
from dockwall.lab.lab import Lab
from dockwall.policy import load_policy
from dockwall.policy.model import BackendChoice
from dockwall.sources.docker_state import read_state
from tests.conftest import lab_name, own_lab

from .agent_helpers import EVENT_BOUND, Agents, LabCli, run_container, wait_until
from .policy_strategies import EXTRA, policy_texts

pytestmark = pytest.mark.lab

FIXED_SEED = 20261201
EXAMPLES = int(os.environ.get("DOCKWALL_PROPERTY_EXAMPLES", "60"))
CHECK_CLI_EVERY = 15


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A lab of its own with the extra containers the strategies name."""
    with own_lab(lab_name("c")) as lab:
        for name, (network, ports, labels) in EXTRA.items():
            run_container(lab, name, ports, network=network, labels=labels)
        yield lab


def pending(plans: list[Plan]) -> list[str]:
    return [
        f"{p.backend} {c.family} {c.where} {'+' if c.op == 'add' else '-'} {c.text}"
        for p in plans
        for c in p.changes
    ]


class Converger:
    """apply, then plan, of one policy file, the way `dockwall apply` / `plan` run them."""

    def __init__(self, lab: Lab, workdir: Path, backend: str) -> None:
        self.lab = lab
        self.cli = LabCli(lab, workdir)
        self.engine = Engine(lab.host, cast(BackendChoice, backend))
        self.path = workdir / "policy.yaml"
        self.examples = 0

    def check(self, text: str) -> None:
        self.path.write_text(text)
        policy = load_policy(self.path)
        with self.lab.client() as client:
            state = with_interfaces(read_state(client), self.lab.host)
        compiled = compile_policy(policy, state)
        selected, plans = self.engine.plan_ruleset(compiled.ruleset, policy.backend)
        self.engine.load(selected, plans)
        _, again = self.engine.plan_ruleset(compiled.ruleset, policy.backend)
        left = pending(again)
        assert not left, "plan after apply is not empty:\n" + "\n".join(left) + "\n" + text
        self.examples += 1
        if self.examples % CHECK_CLI_EVERY == 1:
            argv = ("plan", "--backend", str(self.engine.choice), "--detailed-exitcode")
            result = self.cli.run(*argv, "-f", str(self.path), check=False)
            assert result.returncode == 0, f"the CLI disagrees:\n{result.stdout}\n{text}"


def fresh_seed() -> int:
    given_seed = os.environ.get("DOCKWALL_PROPERTY_SEED")
    return int(given_seed) if given_seed else random.SystemRandom().randrange(2**32)


def run_property(converger: Converger, chosen_seed: int) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @seed(chosen_seed)
    @given(policy_texts())
    def converges(text: str) -> None:
        converger.check(text)

    converges()


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
@pytest.mark.parametrize("kind", ["fixed", "fresh"])
def test_plan_after_apply_is_empty_for_any_policy(
    lab: Lab, tmp_path: Path, backend: str, kind: str
) -> None:
    converger = Converger(lab, tmp_path, backend)
    converger.cli.run("reset", check=False)
    chosen = FIXED_SEED if kind == "fixed" else fresh_seed()
    print(f"\n{backend} {kind} seed {chosen} (replay: DOCKWALL_PROPERTY_SEED={chosen})")
    started = time.monotonic()
    try:
        run_property(converger, chosen)
    finally:
        took = time.monotonic() - started
        print(f"{backend} {kind} seed {chosen}: {converger.examples} examples in {took:.0f} s")
        converger.cli.run("reset", check=False)
    assert converger.examples >= EXAMPLES, f"only {converger.examples} examples ran"


# --- the agent on a quiet host --------------------------------------------------------

ANYONE_EXPLICIT = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress: [{port: 8080/tcp, from: [0.0.0.0/0, "::/0"]}]
"""
QUIET_CHECKS = 10  # drift checks, one a second: the "10 s"
AGENT_SAMPLES = 3


def assert_agent_stays_quiet(agents: Agents, policy: Path, backend: str) -> None:
    """The agent's first reconcile applies the policy; after that, on a host where
    nothing happens, QUIET_CHECKS drift checks find nothing to repair or apply."""
    agent = agents.start(policy, backend=backend)
    ready = agent.wait_ready()
    log_at_ready = agent.log()
    checks = int(ready.get("drift_checks", 0))

    def checked() -> bool:
        return int(agent.mine().get("drift_checks", 0)) >= checks + QUIET_CHECKS

    assert wait_until(checked, 6 * EVENT_BOUND) is not None, f"no drift checks:\n{agent.log()}"
    state = agent.mine()
    later = agent.log().removeprefix(log_at_ready)
    assert state["repairs"] == 0, f"drift repaired on a quiet host:\n{agent.log()}"
    assert state["reconciles"] == ready["reconciles"], f"applied again:\n{agent.log()}"
    assert "drift repaired" not in later and "reconciled" not in later, later
    agent.stop()


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_agent_on_a_quiet_host_applies_nothing(lab: Lab, tmp_path: Path, backend: str) -> None:
    """For the issue's policy and a sample of the property test's policies."""
    cli = LabCli(lab, tmp_path)
    cli.run("reset", check=False)
    agents = Agents(cli)
    try:
        assert_agent_stays_quiet(agents, cli.policy(ANYONE_EXPLICIT), backend)

        @settings(max_examples=AGENT_SAMPLES, deadline=None, database=None, phases=[Phase.generate])
        @seed(FIXED_SEED)
        @given(policy_texts())
        def quiet(text: str) -> None:
            assert_agent_stays_quiet(agents, cli.policy(text, "sample.yaml"), backend)

        quiet()
        assert len(agents.started) == 1 + AGENT_SAMPLES
    finally:
        agents.stop_all()
        cli.run("reset", check=False)
