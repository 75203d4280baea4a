"""`dockwall check`: the parser of plan/apply on files, stdin and several files at once,
with no Docker, no root and no firewall. Warnings have their own module."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dockwall import cli, engine, runner
from dockwall.commands.check import check_data
from dockwall.errors import PolicyError
from dockwall.lab.demo import EXAMPLE
from dockwall.policy import parse_policy
from dockwall.sources import docker_state

ROOT = Path(__file__).resolve().parents[2]
HEAD = "version: 1\ncontainers:\n  - name: web\n"


def dockwall(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command in a process of its own (slow: only where a process matters)."""
    result = subprocess.run(
        [sys.executable, "-m", "dockwall", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env=env or {**os.environ},
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def check(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """`dockwall check ARGS` in this process, through the same command line."""
    result = CliRunner().invoke(cli.app, ["check", *args], input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# What plan and apply refuse, one case per class of error, with the message they give.
BAD: dict[str, tuple[bytes, str]] = {
    "syntax": (
        b"version: 1\ncontainers:\n  - name: [web\n",
        "invalid YAML",
    ),
    "unknown key": (
        (HEAD + "    ingres: deny\n").encode(),
        "4:5: containers[0].ingres: unknown key 'ingres'; did you mean 'ingress'?",
    ),
    "bad CIDR": (
        (HEAD + "    ingress:\n      - from: [192.0.2.300/32]\n").encode(),
        "5:16: containers[0].ingress[0].from[0]: '192.0.2.300/32' is not an IP address",
    ),
    "host bits": (
        (HEAD + "    egress:\n      - to: [192.0.2.100/24]\n").encode(),
        "5:14: containers[0].egress[0].to[0]: 192.0.2.100/24 has host bits set",
    ),
    "any mixed with CIDRs": (
        (HEAD + "    ingress:\n      - from: [192.0.2.0/24, any]\n").encode(),
        "5:30: containers[0].ingress[0].from[1]: any already covers every address",
    ),
    "bad port": (
        (HEAD + "    ingress:\n      - port: 70000/tcp\n").encode(),
        "5:15: containers[0].ingress[0].port: port 70000 is out of range 1-65535",
    ),
    "duplicate key": (
        (HEAD + "    egress: deny\n    egress: allow\n").encode(),
        "5:5: containers[0].egress: duplicate key 'egress' (first given at line 4, column 5)",
    ),
    "non-UTF-8": (
        b"version: 1\ncontainers:\n  - name: w\xe9b\n",
        "3:12: not valid UTF-8 (byte 0xe9)",
    ),
    "empty file": (b"", "1:1: the policy is empty (or only comments)"),
    "only comments": (b"# nothing yet\n", "1:1: the policy is empty (or only comments)"),
    "no version": (b"containers: []\n", "version: is missing"),
    "two entries, one matcher": (
        (HEAD + "  - name: web\n").encode(),
        "4:5: containers[1]: name=web is already matched by containers[0]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_error_class_is_the_parsers_error(tmp_path: Path, case: str) -> None:
    data, expected = BAD[case]
    path = write(tmp_path, "policy.yaml", data)
    result = check("-f", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}:") and expected in lines[0]
    with pytest.raises(PolicyError) as info:
        parse_policy(data, str(path))
    assert lines[0] == f"error: {info.value}"
    assert result.stdout.strip() == f"{path}: invalid"
    assert "Traceback" not in result.stderr


def test_check_and_plan_give_the_same_line(tmp_path: Path) -> None:
    """plan reads the policy before it asks Docker, so it fails the same way here."""
    path = write(tmp_path, "policy.yaml", BAD["bad CIDR"][0])
    checked, planned = dockwall("check", "-f", str(path)), dockwall("plan", "-f", str(path))
    assert checked.returncode == planned.returncode == 1
    assert checked.stderr == planned.stderr


@pytest.mark.parametrize("path", [EXAMPLE, ROOT / "src/dockwall/lab/example-policy.yaml"])
def test_good_file_is_valid_without_warnings(path: Path) -> None:
    result = check("-f", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip() == f"{path}: valid"


def test_readme_policy_is_valid() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The policy file", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    report = check_data(block.encode(), "README.md")
    assert report.valid and report.warnings == []


def test_stdin(tmp_path: Path) -> None:
    good = check("-f", "-", stdin=EXAMPLE.read_bytes())
    assert good.returncode == 0 and good.stdout.strip() == "<stdin>: valid"
    bad = check("-", stdin=BAD["bad port"][0])
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: <stdin>:5:15: containers[0].ingress[0].port:")


def test_several_files_one_bad(tmp_path: Path) -> None:
    """Every file is checked (not just up to the first bad one); one bad fails them all."""
    first = write(tmp_path, "a.yaml", EXAMPLE.read_bytes())
    bad = write(tmp_path, "b.yaml", BAD["unknown key"][0])
    last = write(tmp_path, "c.yaml", EXAMPLE.read_bytes())
    result = check("-f", str(first), "-f", str(bad), str(last))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{first}: valid", f"{bad}: invalid", f"{last}: valid"]
    assert len(result.stderr.splitlines()) == 1 and f"error: {bad}:4:5:" in result.stderr
    assert check(str(first), str(last)).returncode == 0


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = check("--json", "-f", str(missing))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["errors"] == [
        {
            "file": str(missing),
            "line": None,
            "column": None,
            "field": "",
            "message": "cannot read the policy: No such file or directory",
        }
    ]


def test_json_shape(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", HEAD + "    ingress:\n      - ports: [80/tcp, 80/tcp]\n")
    bad = write(tmp_path, "bad.yaml", BAD["bad port"][0])
    result = check("--json", str(good), str(bad))
    assert result.returncode == 1
    assert result.stderr == "", "with --json only the document is printed"
    assert json.loads(result.stdout) == {
        "valid": False,
        "files": [{"file": str(good), "valid": True}, {"file": str(bad), "valid": False}],
        "errors": [
            {
                "file": str(bad),
                "line": 5,
                "column": 15,
                "field": "containers[0].ingress[0].port",
                "message": "port 70000 is out of range 1-65535",
            }
        ],
        "warnings": [
            {
                "file": str(good),
                "line": 5,
                "column": 25,
                "field": "containers[0].ingress[0].ports[1]",
                "message": "80/tcp is already covered by 80/tcp in this list "
                "(at line 5, column 17)",
            }
        ],
    }


def test_warnings_go_to_stderr_and_fail_only_with_strict(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", HEAD + "    ingress: []\n")
    result = check(str(path))
    assert result.returncode == 0
    assert result.stdout.strip() == f"{path}: valid, 1 warning"
    assert result.stderr.startswith(f"warning: {path}:4:14: containers[0].ingress: ")
    assert check("--strict", str(path)).returncode == 1


def test_no_docker_and_no_firewall_are_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with every way to Docker or a program cut: check still works."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("dockwall check must not reach Docker or run programs")

    monkeypatch.setattr(docker_state, "connect", refuse)
    monkeypatch.setattr(engine, "connect", refuse)
    monkeypatch.setattr(runner.SubprocessRunner, "run", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    path = write(tmp_path, "p.yaml", EXAMPLE.read_bytes())
    result = check("-f", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: valid"


def unprivileged() -> list[str]:
    """The command prefix that runs a program as nobody (we are root in CI), or nothing."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root and setpriv is missing: cannot drop privileges")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def test_runs_as_an_ordinary_user_without_docker() -> None:
    """As nobody, with Docker's socket dead and dockwall's state directories absent."""
    with tempfile.TemporaryDirectory(prefix="dockwall-check-") as name:
        home = Path(name)
        home.chmod(0o755)
        good = write(home, "good.yaml", EXAMPLE.read_bytes())
        bad = write(home, "bad.yaml", BAD["bad CIDR"][0])
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "DOCKER_HOST": "unix:///nonexistent/docker.sock",
            "DOCKWALL_STATE_DIR": "/nonexistent/state",
            "DOCKWALL_RUN_DIR": "/nonexistent/run",
        }
        drop = unprivileged()
        whoami = subprocess.run([*drop, "id", "-u"], capture_output=True, text=True, check=True)
        assert whoami.stdout.strip() != "0"
        result = subprocess.run(
            [*drop, sys.executable, "-m", "dockwall", "check", str(good), str(bad)],
            capture_output=True,
            text=True,
            env=env,
            cwd=home,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [f"{good}: valid", f"{bad}: invalid"]
    assert result.stderr.startswith(f"error: {bad}:5:16:"), result.stderr


def test_help_reads_like_a_man_page() -> None:
    result = dockwall("check", "--help", env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for part in (
        "--file",
        "--json",
        "--strict",
        "standard input",
        "Warnings",
        "Exit status: 0 when every file is valid",
        '"errors": [ITEM]',
        '"line": int | null',
        "Examples:",
        "no Docker socket, no firewall",
    ):
        assert part in text, part


def test_pre_commit_hook_definition(tmp_path: Path) -> None:
    """The hook others install: its entry runs check on the files pre-commit passes."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "dockwall-check" and hook["language"] == "python"
    files = re.compile(hook["files"])
    assert files.search("deploy/dockwall/policy.yaml") and files.search("dockwall.yml")
    assert not files.search("docker-compose.yaml")
    program, *args = hook["entry"].split()
    assert program == "dockwall" and args[0] == "check"
    good = write(tmp_path, "dockwall.yaml", EXAMPLE.read_bytes())
    bad = write(tmp_path, "dockwall-bad.yaml", BAD["syntax"][0])
    assert check(*args[1:], str(good)).returncode == 0
    assert check(*args[1:], str(good), str(bad)).returncode == 1
    readme = (ROOT / "README.md").read_text()
    assert "id: dockwall-check" in readme


LISTED = "version: 1\nlists:\n  feeds: {file: feeds.txt}\ncontainers:\n  - name: web\n"
LISTED += "    ingress:\n      - {from: [list:feeds], port: 80/tcp}\n"


def test_check_reads_list_files_and_names_a_bad_line_as_plan_does(tmp_path: Path) -> None:
    policy = write(tmp_path, "policy.yaml", LISTED)
    write(tmp_path, "feeds.txt", "198.51.100.7\n198.51.100.300\n")
    failed = check("-f", str(policy), "--json")
    assert failed.returncode == 1
    [error] = json.loads(failed.stdout)["errors"]
    assert (error["file"], error["line"], error["field"]) == (str(policy), 3, "lists.feeds.file")
    assert f"{tmp_path}/feeds.txt:2: '198.51.100.300' is not an IP address" in error["message"]
    write(tmp_path, "feeds.txt", "198.51.100.7\n")
    assert check("-f", str(policy)).returncode == 0
    (tmp_path / "feeds.txt").unlink()
    assert "cannot read the list" in check("-f", str(policy)).stderr


def test_check_warns_of_the_lines_a_skipping_list_skips(tmp_path: Path) -> None:
    policy = write(
        tmp_path, "policy.yaml", LISTED.replace("feeds.txt}", "feeds.txt, on_error: skip}")
    )
    write(tmp_path, "feeds.txt", "198.51.100.7\nnot-an-address\n")
    report = json.loads(check("-f", str(policy), "--json").stdout)
    assert report["valid"] is True
    assert [w["field"] for w in report["warnings"]] == ["lists.feeds.file"]
    assert "feeds.txt:2" in report["warnings"][0]["message"]
