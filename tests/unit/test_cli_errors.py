"""Bad input on the command line: one clear line, a non-zero exit, no traceback.

The policy is read and validated before Docker is asked, so these run without root,
Docker or a lab, and touch no firewall.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def scratch_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """State and run dirs of the test's own: whatever a command writes there must never
    land in the machine's /var/lib/dockwall or /run/dockwall."""
    monkeypatch.setenv("DOCKWALL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DOCKWALL_STATE_DIR", str(tmp_path / "state"))


def dockwall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockwall", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["plan", "apply", "status"])
def test_bad_policy_names_file_line_column_and_field(tmp_path: Path, command: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\ncontainers:\n  - name: web\n    egress: [{to: [any], port: 99999/tcp}]\n"
    )
    result = dockwall(command, "-f", str(policy))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{policy}:4:" in lines[0] and "containers[0].egress[0].port" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_policy_file(tmp_path: Path) -> None:
    result = dockwall("plan", "-f", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    result = dockwall("plan", "--backend", "pf", "-f", str(tmp_path / "p.yaml"))
    assert result.returncode == 2
    assert "pf" in result.stderr


def test_bad_lab_name_is_refused_before_anything_is_created() -> None:
    result = dockwall("lab", "down", "--name", "../etc")
    assert result.returncode == 1 and "lab name" in result.stderr


def test_help_reads_like_a_man_page() -> None:
    result = dockwall("apply", "--help")
    assert result.returncode == 0
    for option in ("--dry-run", "--cut-existing", "--boot", "--backend", "--json", "--file"):
        assert option in result.stdout


@pytest.mark.parametrize("command", ["plan", "apply", "status", "agent"])
def test_a_fifo_policy_is_refused_at_once(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    result = dockwall(command, "-f", str(fifo))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {fifo}: not a regular file (a FIFO)"
    run = tmp_path / "run"
    left = sorted(p.name for p in run.iterdir()) if run.exists() else []
    assert left == [], f"a refused {command} left files in the run directory: {left}"


def test_a_symlink_to_dev_zero_is_refused_unread(tmp_path: Path) -> None:
    link = tmp_path / "policy.yaml"
    link.symlink_to("/dev/zero")
    result = dockwall("plan", "-f", str(link))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {link}: not a regular file (a character device)"


@pytest.mark.parametrize("how", ["option", "env"])
def test_an_oversized_policy_is_refused_before_it_is_read(tmp_path: Path, how: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\n" + "#" * 4096 + "\n")
    size = policy.stat().st_size
    limit = ["--max-policy-bytes", "1000"] if how == "option" else []
    env = {"DOCKWALL_MAX_POLICY_BYTES": "1000"} if how == "env" else {}
    result = dockwall("plan", *limit, "-f", str(policy), env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {policy}: the file is {size} bytes; the limit is 1000 bytes (raise it with "
        "--max-policy-bytes or DOCKWALL_MAX_POLICY_BYTES)"
    )


def test_a_finished_command_delivers_all_of_its_output_through_a_pipe(tmp_path: Path) -> None:
    """The command exits without the interpreter's teardown (cli.leave): whatever it
    wrote must still reach the pipe whole, and its exit code be the command's."""
    policy = tmp_path / "policy.yaml"
    ports = range(1000, 1400)
    rules = "".join(f"      - {{from: [192.0.2.0/24], port: {p}/tcp}}\n" for p in ports)
    policy.write_text(f"version: 1\ncontainers:\n  - name: web\n    ingress:\n{rules}")
    result = dockwall("export", "ufw", "-f", str(policy))
    assert result.returncode == 0, result.stderr
    assert all(f"port {p} " in result.stdout for p in ports)
    assert result.stdout.endswith("\n")
