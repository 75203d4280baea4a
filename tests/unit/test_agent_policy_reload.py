"""The agent's view of its policy file: whatever the file turns into, the last good
policy stays, nothing blocks, and each change of the file's state is logged once."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dockwall.agent.loop import Agent, AgentConfig

GOOD = "version: 1\ndefaults: {ingress: deny}\n"
OTHER = "version: 1\ndefaults: {ingress: allow}\n"


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Agent, list[str], Path]:
    monkeypatch.setenv("DOCKWALL_RUN_DIR", str(tmp_path / "run"))
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    logged: list[str] = []
    config = AgentConfig(path, max_policy_bytes=4096)
    agent = Agent(config, engine=None, log=logged.append, connect=None)  # type: ignore[arg-type]
    return agent, logged, path


def reload_on_a_thread(agent: Agent) -> bool:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(agent.reload_policy()), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "reading the policy blocked the agent"
    return result[0]


@pytest.mark.parametrize("how", ["truncated", "oversized", "unparsable", "fifo", "deleted"])
def test_a_broken_file_keeps_the_last_good_policy_and_warns_once(
    agent: tuple[Agent, list[str], Path], how: str
) -> None:
    runner, logged, path = agent
    before = runner.policy
    if how == "truncated":
        path.write_bytes(b"")
    elif how == "oversized":
        path.write_text(GOOD + "#" * 5000 + "\n")
    elif how == "unparsable":
        path.write_text("version: [\n")
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)
    else:
        path.unlink()
    for _ in range(3):
        assert reload_on_a_thread(runner) is False
    assert runner.policy == before
    warnings = [line for line in logged if "policy not reloaded" in line]
    assert len(warnings) == 1, logged
    assert runner.stats.policy_problem is not None
    path.unlink(missing_ok=True)
    path.write_text(OTHER)
    assert reload_on_a_thread(runner) is True
    assert runner.policy.defaults.ingress == "allow"
    assert runner.stats.policy_problem is None
