"""DNS through dockwall's forwarder (issue 12): latency added, lookups/s, RSS.

One lab; the agent enforces a policy where `worker` (user network, so Docker's embedded
resolver forwards from its namespace) is a DNS client with `*.learn.example.test`, and
`db` (same network) has no name rules, so its DNS goes straight to the lab's resolver.
In the same run: p50/p99 of sequential lookups for a name no rule mentions, direct (db)
and through the forwarder (worker); for learned names (a new name and address each
time, so every answer waits for its set update); then concurrent lookups for the
forwarder's rate, and the agent's RSS.

Reproduce: `.venv/bin/python -m bench.bench_dns` (as root, about a minute).
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from dockwall.runner import SubprocessRunner

SEQUENTIAL = 300
RATE_LOOKUPS = 5000
POLICY = """\
version: 1
containers:
  - name: worker
    egress:
      - to_fqdn: ["*.learn.example.test"]
        port: 443/tcp
"""


def zone(count: int) -> dict[str, object]:
    records = [{"name": "plain.example.test", "type": "A", "value": "192.0.2.100", "ttl": 300}]
    records += [
        {"name": f"n{i}.learn.example.test", "type": "A",
         "value": f"203.0.113.{i + 1}" if i < 250 else f"198.51.100.{i - 249}", "ttl": 300}
        for i in range(count)
    ]  # fmt: skip
    return {"records": records}


def lookups(lab: Lab, container: str, names: list[str], parallel: int) -> dict[str, object]:
    ns = Prober(lab).container_netns(container)
    job = {"server": "127.0.0.11", "names": names, "parallel": parallel}
    result = SubprocessRunner(netns=ns).run(
        [sys.executable, "-m", "bench.dns_client"], input=json.dumps(job), timeout=300
    )
    found: dict[str, object] = json.loads(result.stdout)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def agent_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def wait_for_agent(lab: Lab) -> int:
    state = lab.names.state_dir / "dockwall-run" / "agent.json"
    for _ in range(600):
        try:
            data = json.loads(state.read_text())
            if data.get("reconciles"):
                return int(data["pid"])
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError("agent did not reconcile")


def measure(lab: Lab) -> str:
    (lab.names.zone_file).write_text(json.dumps(zone(SEQUENTIAL)))
    workdir = Path(tempfile.mkdtemp())
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY)
    argv = [sys.executable, "-m", "dockwall", "agent", "-f", str(policy), "--backend", "nftables"]
    pid = lab.host.spawn(argv, log_path=str(workdir / "agent.log"))
    try:
        wait_for_agent(lab)
        plain = ["plain.example.test"] * SEQUENTIAL
        direct = lookups(lab, "db", plain, 1)
        passed = lookups(lab, "worker", plain, 1)
        learned = lookups(lab, "worker", [f"n{i}.learn.example.test" for i in range(SEQUENTIAL)], 1)
        rate = lookups(lab, "worker", ["plain.example.test"] * RATE_LOOKUPS, 64)
        rss = agent_rss(pid)
    finally:
        SubprocessRunner().run(["kill", str(pid)], check=False)
    rows = []
    cases = (
        ("direct to the lab resolver (db)", direct),
        ("through the forwarder, name no rule mentions", passed),
        ("through the forwarder, new learned name (set update)", learned),
    )
    for label, found in cases:
        ms = list(found["ms"])  # type: ignore[call-overload]
        rows.append(
            f"| {label} | {statistics.median(ms):.2f} ms | {percentile(ms, 0.99):.2f} ms | "
            f"{found['failed']} |"
        )
    base = list(direct["ms"])  # type: ignore[call-overload]
    added = [
        percentile(list(f["ms"]), 0.99) - percentile(base, 0.99)  # type: ignore[call-overload]
        for f in (passed, learned)
    ]
    per_second = RATE_LOOKUPS / float(rate["seconds"])  # type: ignore[arg-type]
    return "\n".join(
        [
            __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "",
            "",
            "| lookups (sequential, 300 each) | p50 | p99 | failed |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
            f"Added at p99: {added[0]:.2f} ms for names no rule mentions (target < 1 ms), "
            f"{added[1]:.2f} ms for learned names (target < 3 ms). Rate: {per_second:,.0f} "
            f"lookups/s through the forwarder, 64 in flight, {rate['failed']} failed (target "
            f">= 5,000/s). Agent RSS after the run: {rss} MB.",
            "",
            "Reproduce: `.venv/bin/python -m bench.bench_dns` (as root).",
        ]
    )


def run() -> str:
    lab = Lab("fb" + secrets.token_hex(3))
    try:
        lab.up()
        return measure(lab)
    finally:
        lab.down()


if __name__ == "__main__":
    print(run())
