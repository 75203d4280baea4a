"""The shipped systemd units: present in the package, ordered around docker.service."""

from __future__ import annotations

import configparser
from pathlib import Path

from typer.testing import CliRunner

from dockwall.cli import app


def parsed(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(path.read_text())
    return parser


def test_install_units_writes_both_with_the_right_ordering(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["install-units", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    boot = parsed(tmp_path / "dockwall-boot.service")
    agent = parsed(tmp_path / "dockwall-agent.service")
    assert "docker.service" in boot["Unit"]["Before"]
    assert boot["Service"]["ExecStart"].endswith("dockwall apply --boot")
    assert "docker.service" in agent["Unit"]["After"]
    assert agent["Service"]["Restart"] == "always"
