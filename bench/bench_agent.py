"""The agent's speed and memory, in a lab of its own.

1. Start event to rules in force, with 200 containers running: the agent runs as a user
   runs it (`dockwall agent -f POLICY`), every container is matched by a policy entry so
   each start really adds rules, and 50 more containers are started one at a time. The
   start time is the `timeNano` of Docker's own `start` event; "in force" is the
   timestamp of the agent's `reconciled ...` log line, written right after the
   iptables-restore transactions returned (both clocks are this machine's). Each sample
   is also checked against the live ruleset: the new address is in dockwall's chains.
2. Memory: the real agent's RSS with those 250 real containers, and the RSS of the
   agent's own reconcile path (the same Agent class, compile, plan and apply, loading
   real rules into the lab) fed a synthetic host state of 1,000 containers, since 1,000
   real containers are too heavy for a small shared machine.

Reproduce (as root): .venv/bin/python -m bench.bench_agent
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockwall.agent.loop import Agent, AgentConfig
from dockwall.agent.source import docker_session
from dockwall.engine import default_engine
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.model.state import Attachment, Bridge, Container, PublishedPort
from dockwall.runner import SubprocessRunner

RUNNING = 200
STARTS = 50
SYNTHETIC = 1000
COMMAND = "python -m bench.bench_agent"
POLICY = """\
version: 1
defaults: {ingress: deny}
containers:
  - label: bench=1
    ingress: [{port: 80/tcp, from: [192.0.2.0/24, "2001:db8:100::/48"]}]
"""
LOG_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) dockwall-agent: reconciled \(.*\): (\d+) change")


@dataclass(frozen=True)
class Result:
    latencies_ms: list[float]
    agent_rss_mb: float
    synthetic: dict[str, float]
    running: int


def host_runner(lab: Lab) -> SubprocessRunner:
    """The lab host, with bytecode cached in the lab (the environment may forbid it)."""
    env = {
        **lab.host.env,
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(lab.names.state_dir / "pycache"),
    }
    return SubprocessRunner(netns=lab.host.netns, env=env)


def start_container(lab: Lab, name: str) -> str:
    with lab.client() as client:
        container = client.containers.run(
            t.IMAGE, ["sleep", "2147483647"], name=name, detach=True, labels={"bench": "1"}
        )
        return str(container.id)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class StartEvents:
    """Docker's `start` events, by container id, read on a thread."""

    def __init__(self, lab: Lab) -> None:
        self.times: dict[str, float] = {}
        self.client_cm = lab.client()
        self.client = self.client_cm.__enter__()
        self.stream = self.client.events(
            decode=True, since=int(time.time()), filters={"type": "container", "event": "start"}
        )
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self) -> None:
        try:
            for event in self.stream:
                self.times[event["id"]] = event["timeNano"] / 1e9
        except Exception:
            return

    def close(self) -> None:
        self.stream.close()
        self.client_cm.__exit__(None, None, None)


def reconciled_at(log: str, after: float) -> float | None:
    """Epoch time of the first log line reporting applied changes at or after `after`."""
    day = datetime.fromtimestamp(after, UTC).date()
    for line in log.splitlines():
        match = LOG_LINE.match(line)
        if not match or int(match[2]) == 0:
            continue
        clock = datetime.strptime(match[1], "%H:%M:%S.%f").time()
        stamp = datetime.combine(day, clock, tzinfo=UTC)
        if stamp.timestamp() < after - 43200:
            stamp += timedelta(days=1)
        # log stamps are truncated to the millisecond: allow that much
        if stamp.timestamp() >= after - 0.001:
            return stamp.timestamp()
    return None


def address_of(lab: Lab, container_id: str) -> str:
    with lab.client() as client:
        attrs = client.api.inspect_container(container_id)
    return str(attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"])


def in_force(lab: Lab, address: str) -> bool:
    save = lab.host.run(["iptables-save", "-t", "filter"]).stdout
    return any(
        line.startswith("-A DOCKWALL-") and f" {address}/32 " in line for line in save.splitlines()
    )


def measure_latency(lab: Lab, workdir: Path) -> tuple[list[float], float]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda i: start_container(lab, f"run{i:03d}"), range(RUNNING)))
    policy = workdir / "bench-agent-policy.yaml"
    policy.write_text(POLICY)
    log_path = workdir / "bench-agent.log"
    argv = [sys.executable, "-m", "dockwall", "agent", "-f", str(policy), "--backend", "iptables"]
    pid = host_runner(lab).spawn(argv, log_path=str(log_path))
    events = StartEvents(lab)
    latencies: list[float] = []
    try:
        state_path = lab.names.state_dir / "dockwall-run" / "agent.json"
        for _ in range(300):
            try:
                state = json.loads(state_path.read_text())
                if state.get("pid") == pid and state.get("reconciles"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"agent not ready:\n{log_path.read_text()}")
        time.sleep(1.0)
        for i in range(STARTS):
            container_id = start_container(lab, f"new{i:03d}")
            at = None
            for _ in range(100):
                started = events.times.get(container_id)
                if started is not None:
                    at = reconciled_at(log_path.read_text(), started)
                    if at is not None:
                        break
                time.sleep(0.05)
            if at is None or started is None:
                raise RuntimeError(f"no reconcile seen for start {i}:\n{log_path.read_text()}")
            if not in_force(lab, address_of(lab, container_id)):
                raise RuntimeError(f"start {i}: the new address is not in dockwall's chains")
            latencies.append((at - started) * 1000)
            time.sleep(0.5)
        agent_rss = rss_mb(pid)
    finally:
        events.close()
        SubprocessRunner().run(["kill", str(pid)], check=False)
    return latencies, agent_rss


def synthetic_child(count: int, policy_path: str) -> None:
    """Runs inside the lab host: the Agent's reconcile path over `count` fake containers."""
    bridge = Bridge(
        "bridge",
        "docker0",
        (ipaddress.ip_network("172.17.0.0/16"), ipaddress.ip_network(t.DOCKER_V6_CIDR)),
    )

    def container(i: int) -> Container:
        v4 = ipaddress.ip_address("172.17.16.0") + i
        v6 = ipaddress.ip_address("2001:db8:d0c::1:0") + i
        return Container(
            id=f"{i:08x}" * 8,
            name=f"syn{i:05d}",
            labels={"bench": "1", "com.docker.compose.project": "syn"},
            attachments=(Attachment("bridge", "docker0", (v4, v6)),),
            ports=(PublishedPort(30000 + i, 80, "tcp"),),
        )

    engine = default_engine("iptables")
    agent = Agent(AgentConfig(Path(policy_path)), engine, print, connect=docker_session)
    agent.bridges = {"bridge": bridge}
    agent.containers = {c.id: c for c in map(container, range(count))}
    started = time.perf_counter()
    agent.reconcile("synthetic resync", everything=True)
    full = time.perf_counter() - started
    steps = []
    for i in range(count, count + 20):  # churn: one container goes, one comes
        agent.containers.pop(next(iter(agent.containers)))
        fresh = container(i)
        agent.containers[fresh.id] = fresh
        started = time.perf_counter()
        agent.reconcile("synthetic event")
        steps.append(time.perf_counter() - started)
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    print(
        json.dumps(
            {
                "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
                "hwm_mb": int(fields["VmHWM"].split()[0]) / 1024,
                "full_s": full,
                "event_ms_p50": statistics.median(steps) * 1000,
                "reconciles": agent.stats.reconciles,
            }
        )
    )


def measure_synthetic(lab: Lab, workdir: Path) -> dict[str, float]:
    policy = workdir / "bench-agent-policy.yaml"
    policy.write_text(POLICY)
    argv = [sys.executable, str(Path(__file__).resolve()), "--synthetic", str(SYNTHETIC)]
    result = host_runner(lab).run([*argv, str(policy)], timeout=600)
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    if data["reconciles"] != 21:
        raise RuntimeError(f"synthetic run failed:\n{result.stdout}\n{result.stderr}")
    return data


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(result: Result) -> str:
    lat = result.latencies_ms
    p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
    syn = result.synthetic
    ok = "✔" if p50 < 50 else "✘"
    ok99 = "✔" if p99 < 250 else "✘"
    okm = "✔" if syn["hwm_mb"] < 100 else "✘"
    return (
        f"Reproduce: `{COMMAND}` (as root; one lab, about 3 minutes).\n\n"
        "| measurement | value | target |\n|---|---|---|\n"
        f"| start event -> rules in force, {result.running} containers running, "
        f"{len(lat)} starts: p50 | {p50:.0f} ms | < 50 ms {ok} |\n"
        f"| same, p99 (max {max(lat):.0f} ms, mean {statistics.mean(lat):.0f} ms) | "
        f"{p99:.0f} ms | < 250 ms {ok99} |\n"
        f"| agent RSS, real agent, {result.running + len(lat)} real containers | "
        f"{result.agent_rss_mb:.0f} MB | |\n"
        f"| agent reconcile path RSS, {SYNTHETIC:,} synthetic containers (peak / end) | "
        f"{syn['hwm_mb']:.0f} / {syn['rss_mb']:.0f} MB | < 100 MB {okm} |\n"
        f"| full reconcile of {SYNTHETIC:,} synthetic containers (compile, plan, apply) | "
        f"{syn['full_s']:.2f} s | |\n"
        f"| one-container reconcile at {SYNTHETIC:,} synthetic containers, p50 of 20 | "
        f"{syn['event_ms_p50']:.0f} ms | |\n\n"
        "Latency: Docker's `start` event `timeNano` to the agent's `reconciled` log line "
        "(written after the iptables-restore transactions returned), containers matched by "
        "a policy entry, started one at a time 0.5 s apart; each sample checked in the live "
        "ruleset. The 1,000-container memory figure is the agent's own reconcile path "
        "(Agent class, compile, plan, apply into the lab's iptables) fed a synthetic host "
        "state, not 1,000 real containers.\n"
    )


def run() -> str:
    lab = Lab("a" + secrets.token_hex(3))
    try:
        lab.up(samples=False)
        workdir = lab.names.state_dir / "bench"  # removed with the lab
        workdir.mkdir(parents=True, exist_ok=True)
        latencies, agent_rss = measure_latency(lab, workdir)
        synthetic = measure_synthetic(lab, workdir)
    finally:
        lab.down()
    return table(Result(latencies, agent_rss, synthetic, RUNNING))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--synthetic":
        synthetic_child(int(sys.argv[2]), sys.argv[3])
    else:
        sys.stdout.write(run())
