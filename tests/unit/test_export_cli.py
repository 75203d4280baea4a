"""`dockwall export` on the command line: stdout or -o, warnings on stderr, --strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .export_helpers import EXAMPLE_TEXT
from .test_cli_errors import dockwall

STRICT_CLEAN = """version: 1
defaults: {ingress: deny, egress: deny}
containers:
  - name: web
    ingress:
      - port: 8080/tcp
        container_port: 80/tcp
        from: [192.0.2.0/24]
"""


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(EXAMPLE_TEXT)
    return path


def test_warnings_go_to_stderr_and_the_output_to_stdout(example: Path) -> None:
    result = dockwall("export", "k8s", "-f", str(example))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("kind: NetworkPolicy") == 4
    assert "warning:" in result.stderr and "taken as the container port" in result.stderr


def test_output_file(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "sg.json"
    result = dockwall("export", "aws", "--format", "json", "-f", str(example), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert set(json.loads(out.read_text())) == {"ingress", "egress"}


def test_strict_turns_warnings_into_errors_and_writes_nothing(
    example: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.yaml"
    result = dockwall("export", "k8s", "--strict", "-f", str(example), "-o", str(out))
    assert result.returncode == 1
    assert "error:" in result.stderr and not out.exists()


def test_strict_passes_a_policy_the_target_expresses_fully(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(STRICT_CLEAN)
    result = dockwall("export", "k8s", "--strict", "-f", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_bad_policy_and_unknown_target(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\ncontainers:\n  - name: web\n    egress: [{to: [any], port: 0/tcp}]\n"
    )
    result = dockwall("export", "nginx", "-f", str(path))
    assert result.returncode == 1
    assert f"{path}:4:" in result.stderr and "Traceback" not in result.stderr
    assert dockwall("export", "gcp", "-f", str(path)).returncode == 2


def test_aws_limit_is_an_error_with_the_count(tmp_path: Path) -> None:
    sources = ", ".join(f"192.0.2.{i}/32" for i in range(70))
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"version: 1\ncontainers:\n  - name: web\n    ingress:\n      - port: 443/tcp\n"
        f"        from: [{sources}]\n"
    )
    result = dockwall("export", "aws", "-f", str(path))
    assert result.returncode == 1
    assert "70 ingress IPv4 rules" in result.stderr
