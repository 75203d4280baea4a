"""The CLI imports only the command it runs, and still reads the command's name."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dockwall import cli

PROBE = """
import sys
from dockwall import cli
cli.build_app(cli.invoked_command(["dockwall", "check", "x.yaml"]))
print(sorted(m for m in sys.modules if m.startswith("dockwall.commands.")))
"""


def test_a_named_command_builds_an_app_of_that_command_alone() -> None:
    found = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert "dockwall.commands.check" in found
    for other in ("agent", "explain", "lab", "policy", "audit"):
        assert f"dockwall.commands.{other}'" not in found, found


def test_the_one_command_app_still_takes_the_command_name() -> None:
    result = CliRunner().invoke(cli.build_app("check"), ["check", "--help"])
    assert result.exit_code == 0, result.output
    assert "Validate policy files" in result.output


def test_help_unknown_commands_and_completion_see_every_command() -> None:
    assert cli.invoked_command(["dockwall"]) is None
    assert cli.invoked_command(["dockwall", "--help"]) is None
    assert cli.invoked_command(["dockwall", "nope"]) is None
    assert cli.invoked_command(["dockwall", "lab", "up"]) == "lab"
    result = CliRunner().invoke(cli.app, ["--help"])
    assert all(name in result.output for name in cli.COMMANDS)


def test_shell_completion_builds_the_whole_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_DOCKWALL_COMPLETE", "complete_bash")
    assert cli.invoked_command(["dockwall", "plan"]) is None
