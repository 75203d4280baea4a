"""What the agent costs on a quiet host: CPU per minute and ruleset listings, both
backends, and optionally another dockwall tree's agent beside it in the same run.

One lab; the agent enforces a policy with name rules (the DNS forwarder runs), a named
list and ingress rules, and nothing happens for SECONDS: no events, no lookups. The
figures are its own CPU time plus that of the processes it ran (`nft`, `iptables-save`,
`ip`), from /proc/PID/stat (utime, stime, cutime, cstime), and its drift checks and the
checks that listed the ruleset (agent.json). With `--before SRC` the agent of the tree
at SRC (its `src` directory) is measured the same way first, for a before/after.

Reproduce: `.venv/bin/python -m bench.bench_agent_idle [--before /path/to/old/src]`
(as root; a minute and a half per backend and tree).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from dockwall.lab.lab import Lab
from dockwall.runner import SubprocessRunner

SECONDS = 30.0
SETTLE = 5.0
POLICY = """\
version: 1
lists:
  feeds: {file: feeds.txt}
containers:
  - name: web
    ingress:
      - {from: [any], except: [list:feeds], port: 8080/tcp}
    egress:
      - to_fqdn: ["*.example.test"]
        port: 443/tcp
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of PID, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def agent_state(lab: Lab) -> dict[str, object]:
    try:
        state: dict[str, object] = json.loads(
            (lab.names.state_dir / "dockwall-run" / "agent.json").read_text()
        )
    except (OSError, ValueError):
        return {}
    return state


def count(state: dict[str, object], key: str) -> int:
    value = state.get(key, 0)
    return value if isinstance(value, int) else 0


def measure(lab: Lab, backend: str, src: str | None) -> str:
    work = Path(tempfile.mkdtemp(prefix="dockwall-bench-idle-"))
    (work / "feeds.txt").write_text("198.51.100.7\n2001:db8:200::7\n")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    argv = [sys.executable, "-m", "dockwall", "agent", "-f", str(policy), "--backend", backend]
    env = {**lab.host.env, **({"PYTHONPATH": src} if src else {})}
    runner = SubprocessRunner(netns=lab.host.netns, env=env)
    pid = runner.spawn(argv, log_path=str(work / "agent.log"))
    try:
        for _ in range(600):
            if agent_state(lab).get("pid") == pid and agent_state(lab).get("reconciles"):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"agent did not start: {(work / 'agent.log').read_text()}")
        time.sleep(SETTLE)
        first, cpu0, t0 = agent_state(lab), cpu_seconds(pid), time.monotonic()
        time.sleep(SECONDS)
        last, cpu1, t1 = agent_state(lab), cpu_seconds(pid), time.monotonic()
    finally:
        SubprocessRunner().run(["kill", str(pid)], check=False)
        time.sleep(1.0)
    minutes = (t1 - t0) / 60
    checks = count(last, "drift_checks") - count(first, "drift_checks")
    listed = checks  # an agent without a drift gate lists at every check
    if "drift_listings" in last:
        listed = count(last, "drift_listings") - count(first, "drift_listings")
    who = f"tree {src}" if src else "this tree"
    return (
        f"| {backend} | {who} | {(cpu1 - cpu0) / minutes:.2f} s | "
        f"{checks / minutes:.0f} | {listed / minutes:.0f} |"
    )


def run(before: str | None = None) -> str:
    lab = Lab("idle" + secrets.token_hex(3))
    rows = []
    try:
        lab.up()
        for backend in ("nftables", "iptables"):
            for src in ([before] if before else []) + [None]:
                rows.append(measure(lab, backend, src))
    finally:
        lab.down()
    head = [
        "| backend | agent | CPU per minute (own + processes run) | drift checks/min | "
        "listings/min |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    return "\n".join([*head, *rows, "", f"Load average after: {os.getloadavg()[0]:.2f}."])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", help="the src directory of another dockwall tree")
    print(run(parser.parse_args().before))
