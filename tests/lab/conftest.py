"""Fixtures for the lab tests that drive the dockwall CLI and agents on a lab's host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockwall.lab.lab import Lab

from .agent_helpers import Agents, LabCli


@pytest.fixture
def cli(lab: Lab, tmp_path: Path) -> Iterator[LabCli]:
    """The CLI on the module's lab, which is plain Docker again before and after."""
    cli = LabCli(lab, tmp_path)
    cli.cleanup()
    try:
        yield cli
    finally:
        cli.cleanup()


@pytest.fixture
def agents(cli: LabCli) -> Iterator[Agents]:
    """Torn down before `cli`, so no agent re-applies rules while the lab is reset."""
    agents = Agents(cli)
    try:
        yield agents
    finally:
        agents.stop_all()
