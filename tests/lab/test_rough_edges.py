"""Rough edges a new user hit (issue 9, section 5), on a real lab: `lab exec dockwall`
without dockwall on PATH, `status` on a host without a policy, and output in a pipe that
keeps plan, explain, status and probe lines whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockwall.engine import DEFAULT_POLICY
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober

from .dockwall_cli import Dockwall

pytestmark = pytest.mark.lab

PLAIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Long lines on purpose: many sources in one rule, IPv6 addresses, long chain names.
LONG_POLICY = """\
version: 1
defaults: {ingress: deny, egress: allow}
containers:
  - name: db
    ingress:
      - port: 5432/tcp
        from: [192.0.2.100/32, 198.51.100.128/25, 203.0.113.64/26, "2001:db8:100::/64",
               "2001:db8:200:abcd::/64", "2001:db8:203:ffff:ffff::/80"]
  - name: web
    ingress:
      - {port: 8080/tcp, from: [any]}
    egress:
      - {to: [203.0.113.0/24, "2001:db8:203::/48"], ports: [443/tcp, 8000-8999/tcp]}
"""


def outer_dockwall(*args: str) -> subprocess.CompletedProcess[str]:
    """dockwall on the machine (root, its own namespace) with stdout a pipe and a PATH
    without the virtualenv, as after `make demo` in a fresh root shell."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "dockwall", *args],
        capture_output=True,
        text=True,
        env={**env, "PATH": PLAIN_PATH},
        timeout=300,
        check=False,
    )


def whole_in_lines(text: str, output: str) -> bool:
    return any(text in line for line in output.splitlines())


def no_policy_here() -> None:
    if DEFAULT_POLICY.exists():
        pytest.fail(f"{DEFAULT_POLICY} exists on this machine: cannot test a host without one")


def test_lab_exec_runs_the_same_dockwall(lab: Lab, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(LONG_POLICY)
    plain = subprocess.run(
        ["sh", "-c", "command -v dockwall || true"],
        capture_output=True,
        text=True,
        env={"PATH": PLAIN_PATH},
        check=True,
    )
    assert plain.stdout.strip() == "", "dockwall must not be on the plain PATH for this test"
    result = outer_dockwall(
        "lab", "exec", "--name", lab.names.name, "--", "dockwall", "plan", "-f", str(policy)
    )
    assert result.returncode == 0, result.stderr
    assert "failed to execute" not in result.stderr
    assert result.stdout.startswith("backend: ")
    assert "Plan: " in result.stdout or "No changes" in result.stdout


def test_status_without_a_policy_shows_what_is_live(
    dockwall: Dockwall, prober: Prober, lab: Lab
) -> None:
    no_policy_here()
    plain = json.loads(dockwall.run("status", "--json").stdout)
    assert plain["policy"] is None and plain["no_policy"] == f"{DEFAULT_POLICY} does not exist"
    assert plain["rules_in_force"] is False and plain["counters"] == []
    rows = {row["name"]: row for row in plain["containers"]}
    assert {"web", "db", "worker"} <= set(rows)
    assert rows["db"]["published"] == ["5432->5432/tcp"]
    assert rows["db"]["ingress"] == "allow all" and rows["db"]["entry"].startswith("none")
    assert prober.probe("198.51.100.7", "host:5432/tcp"), "plain Docker: open to everyone"
    human = dockwall.run("status").stdout
    assert human.startswith(f"no policy given: {DEFAULT_POLICY} does not exist")
    assert "no dockwall rules in force: Docker's defaults apply" in human

    dockwall.apply(LONG_POLICY)
    live = json.loads(dockwall.run("status", "--json").stdout)
    assert live["policy"] is None and live["rules_in_force"] is True
    assert live["applied_ruleset_known"] is True and live["counters"]
    rows = {row["name"]: row for row in live["containers"]}
    assert rows["db"]["entry"] == "name=db"
    assert rows["db"]["ingress"].startswith("5432/tcp (host port) from 192.0.2.100/32, ")
    assert rows["worker"]["entry"] == "defaults" and rows["worker"]["ingress"] == "deny all"
    # what status says is what packets do
    assert prober.probe("192.0.2.100", "host:5432/tcp")
    assert not prober.probe("198.51.100.7", "host:5432/tcp")
    assert "dockwall's rules are in force (as last applied)" in dockwall.run("status").stdout


def test_output_in_a_pipe_keeps_lines_whole(dockwall: Dockwall) -> None:
    """Lab commands run with stdout a pipe: every rule of the plan, every counter of
    status and every rule on explain's path is on one line, exactly as --json has it."""
    policy = str(dockwall.policy(LONG_POLICY))
    plan_json = json.loads(dockwall.run("plan", "--json", "-f", policy).stdout)
    plan = dockwall.run("plan", "-f", policy).stdout
    texts = [c["text"] for c in plan_json["changes"]]
    assert max(map(len, texts)) > 90, "the test needs rules longer than 80 columns"
    broken = [t for t in texts if not whole_in_lines(t, plan)]
    assert broken == [], broken

    dockwall.run("apply", "-f", policy)
    counters = json.loads(dockwall.run("status", "--json", "-f", policy).stdout)["counters"]
    status = dockwall.run("status", "-f", policy).stdout
    assert [c["text"] for c in counters if not whole_in_lines(c["text"], status)] == []

    target = ["--from", "198.51.100.7", "--to", "host:5432/tcp"]
    steps = json.loads(dockwall.run("explain", "--json", *target, check=False).stdout)["path"]
    explained = dockwall.run("explain", *target, check=False).stdout
    rules = [s["rule"] for s in steps if s["rule"]]
    assert rules and max(map(len, rules)) > 80
    assert [r for r in rules if not whole_in_lines(r, explained)] == []


def test_probe_matrix_in_a_pipe_keeps_lines_whole(lab: Lab) -> None:
    """A container with a long name makes the matrix wider than 80 columns; in a pipe
    it is printed at its full width, every header whole, instead of squeezed."""
    wide = "reporting-dashboard-frontend"
    lab.run_container(wide, {"9090/tcp": 9090})
    try:
        name = ["--name", lab.names.name]
        measured = json.loads(outer_dockwall("lab", "probe", "--matrix", "--json", *name).stdout)
        result = outer_dockwall("lab", "probe", "--matrix", *name)
    finally:
        with lab.client() as client:
            client.containers.get(wide).remove(force=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "from \\ to" in line)
    assert f"{wide} host:9090/tcp" in header
    for cell in measured["ingress"]:
        assert f" {cell['destination']} " in header, (cell["destination"], header)
    egress_header = next(line for line in lines if "to \\ from" in line)
    for cell in measured["egress"]:
        assert f" {cell['source']} " in egress_header, cell["source"]
        assert any(line.startswith(f"│ {cell['destination']} ") for line in lines)
    assert max(map(len, lines)) > 100
