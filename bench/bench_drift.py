"""How long the agent takes to repair drift by hand, both backends, in a lab of its own.

The agent runs as a user runs it (`dockwall agent -f POLICY --drift-interval 1`); each
round tampers with dockwall's rules from outside (the commands in TAMPERING) and times
how long until the live ruleset is dockwall's again, read from iptables-save or
`nft list table`. The target is 2 s (a drift check every second, plus the repair). The
lab tests only assert that the repair happens (tests/lab/test_agent.py): on a shared,
busy machine a deadline there would test the machine, not dockwall.

Reproduce (as root): .venv/bin/python -m bench.bench_drift
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dockwall.lab.lab import Lab
from dockwall.runner import SubprocessRunner

COMMAND = ".venv/bin/python -m bench.bench_drift"
ROUNDS = 5
TARGET_S = 2.0
GIVE_UP_S = 30.0
POLICY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress: [{port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]
"""
MARKED = ["-m", "comment", "--comment", "dockwall"]
TAMPERING: dict[str, dict[str, list[list[str]]]] = {
    "iptables": {
        "iptables -F DOCKER-USER": [["iptables", "-F", "DOCKER-USER"]],
        "DOCKWALL-FORWARD detached, flushed, deleted": [
            ["iptables", "-D", "DOCKER-USER", *MARKED, "-j", "DOCKWALL-FORWARD"],
            ["iptables", "-F", "DOCKWALL-FORWARD"],
            ["iptables", "-X", "DOCKWALL-FORWARD"],
        ],
        "ip6tables -F DOCKWALL-DEFAULT-I": [["ip6tables", "-F", "DOCKWALL-DEFAULT-I"]],
    },
    "nftables": {
        "nft delete table": [["nft", "delete", "table", "inet", "dockwall"]],
        "nft flush chain forward": [["nft", "flush", "chain", "inet", "dockwall", "forward"]],
    },
}
COUNTERS = re.compile(r"\[\d+:\d+\] |counter packets \d+ bytes \d+")


def snapshot(lab: Lab, backend: str) -> str:
    """dockwall's part of the live ruleset, counters left out."""
    if backend == "nftables":
        result = lab.host.run(["nft", "list", "table", "inet", "dockwall"], check=False)
        return COUNTERS.sub("", result.stdout) if result.returncode == 0 else ""
    lines = []
    for tool in ("iptables-save", "ip6tables-save"):
        text = lab.host.run([tool, "-t", "filter"]).stdout
        lines += [line for line in text.splitlines() if "DOCKWALL" in line or "dockwall" in line]
    return "\n".join(lines)


def wait_for(predicate: Callable[[], bool], timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def agent_state(lab: Lab) -> dict[str, object]:
    path = lab.names.state_dir / "dockwall-run" / "agent.json"
    try:
        state: dict[str, object] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state


def measure(lab: Lab, workdir: Path, backend: str) -> dict[str, list[float]]:
    policy = workdir / "drift-policy.yaml"
    policy.write_text(POLICY)
    argv = [sys.executable, "-m", "dockwall", "agent", "-f", str(policy)]
    argv += ["--backend", backend, "--drift-interval", "1"]
    pid = lab.host.spawn(argv, log_path=str(workdir / f"agent-{backend}.log"))
    try:
        ready = wait_for(
            lambda: agent_state(lab).get("pid") == pid and bool(agent_state(lab).get("reconciles")),
            GIVE_UP_S,
        )
        if ready is None:
            raise RuntimeError(f"the {backend} agent never became ready")
        wanted = snapshot(lab, backend)
        found: dict[str, list[float]] = {}
        for _ in range(ROUNDS):
            for what, commands in TAMPERING[backend].items():
                for command in commands:
                    lab.host.run(command)
                took = wait_for(lambda: snapshot(lab, backend) == wanted, GIVE_UP_S)
                if took is None:
                    raise RuntimeError(f"{backend}: {what} was never repaired")
                found.setdefault(what, []).append(took)
        return found
    finally:
        SubprocessRunner().run(["kill", str(pid)], check=False)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10.0)
        lab.host.run([sys.executable, "-m", "dockwall", "reset"], check=False)


def table(results: dict[str, dict[str, list[float]]]) -> str:
    rows = []
    for backend, found in results.items():
        for what, times in found.items():
            worst = max(times)
            mark = "✔" if worst < TARGET_S else "✘"
            rows.append(
                f"| {backend} | {what} | {statistics.median(times):.2f} s | {worst:.2f} s | "
                f"< {TARGET_S:.0f} s {mark} |\n"
            )
    return (
        f"Reproduce: `{COMMAND}` (as root; one lab, about a minute).\n\n"
        f"The agent with `--drift-interval 1`; each tampering done {ROUNDS} times, timed "
        "from the command returning to dockwall's rules being back in the live ruleset.\n\n"
        "| backend | tampering | median | max | target |\n|---|---|---|---|---|\n" + "".join(rows)
    )


def run() -> str:
    lab = Lab(os.environ.get("DOCKWALL_LAB_PREFIX", "") + "d" + secrets.token_hex(3))
    try:
        lab.up()
        workdir = lab.names.state_dir / "bench"  # removed with the lab
        workdir.mkdir(parents=True, exist_ok=True)
        results = {backend: measure(lab, workdir, backend) for backend in TAMPERING}
    finally:
        lab.down()
    return table(results)


if __name__ == "__main__":
    sys.stdout.write(run())
