"""Compile + apply time for N containers with 10 rules each, per backend, in a lab.

The containers are synthetic (a HostState built here, addresses on the lab's docker0),
because what is measured is dockwall's own work: parse, compile, read the live ruleset,
diff and load it in one transaction per family. Each measurement runs in a fresh child
process so its peak RSS is its own. Run: .venv/bin/python -m bench
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from dockwall.backends.base import Backend
from dockwall.backends.iptables import IptablesBackend
from dockwall.backends.nftables import NftablesBackend
from dockwall.compile.compiler import compile_policy
from dockwall.model.state import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    Attachment,
    Bridge,
    Container,
    HostState,
)
from dockwall.policy import parse_policy
from dockwall.runner import SubprocessRunner

DOCKER0 = Bridge(
    "bridge",
    "docker0",
    (ipaddress.ip_network("172.16.0.0/12"), ipaddress.ip_network("2001:db8:d0c::/64")),
)


@dataclass(frozen=True)
class ApplyTiming:
    containers: int
    backend: str
    parse_s: float
    compile_s: float
    plan_s: float
    apply_s: float
    changes: int
    peak_rss_mb: float

    @property
    def total_s(self) -> float:
        return self.parse_s + self.compile_s + self.plan_s + self.apply_s


SERVICES = 100


def policy_text(count: int) -> str:
    """One entry per container (by name) up to 1,000 containers; beyond that, one entry per
    compose service with count/100 replicas each, as large hosts are really described.
    Every entry: 5 ingress rules (port x source) and 5 egress rules (CIDR x port)."""
    lines = ["version: 1", "defaults: {ingress: deny, egress: allow}", "containers:"]
    for i in range(count if count <= 1000 else SERVICES):
        if count <= 1000:
            lines.append(f"  - name: c{i:05d}")
        else:
            lines.append(f"  - compose: {{project: bench, service: s{i:03d}}}")
        lines.append("    ingress:")
        lines += [
            f'      - {{port: {8000 + k}/tcp, from: [198.51.100.{k + 1}/32, "2001:db8:{k}::/48"]}}'
            for k in range(5)
        ]
        lines.append("    egress:")
        lines += [f"      - {{to: [203.0.113.{k * 16}/28], port: {443 + k}/tcp}}" for k in range(5)]
    return "\n".join(lines) + "\n"


def host_state(count: int) -> HostState:
    base4 = ipaddress.ip_address("172.16.0.2")
    base6 = ipaddress.ip_address("2001:db8:d0c::2")
    containers = tuple(
        Container(
            f"{i:012x}" + "0" * 52,
            f"c{i:05d}",
            labels={COMPOSE_PROJECT: "bench", COMPOSE_SERVICE: f"s{i % SERVICES:03d}"},
            attachments=(Attachment("bridge", "docker0", (base4 + i, base6 + i)),),
        )
        for i in range(count)
    )
    return HostState((DOCKER0,), containers)


def backend_for(name: str, netns: str) -> Backend:
    runner = SubprocessRunner(netns=netns)
    return IptablesBackend(runner) if name == "iptables" else NftablesBackend(runner)


def measure(backend: Backend, count: int) -> ApplyTiming:
    text, state = policy_text(count), host_state(count)
    t0 = time.perf_counter()
    policy = parse_policy(text, "bench.yaml")
    t1 = time.perf_counter()
    ruleset = compile_policy(policy, state).ruleset
    t2 = time.perf_counter()
    plan = backend.plan(ruleset)
    t3 = time.perf_counter()
    backend.apply(plan)
    t4 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend.apply(backend.plan_reset())
    return ApplyTiming(
        count, backend.name, t1 - t0, t2 - t1, t3 - t2, t4 - t3, len(plan.changes), rss
    )


def measure_in_child(backend: str, count: int, netns: str) -> ApplyTiming:
    argv = [sys.executable, "-m", "bench.bench_apply", backend, str(count), netns]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)  # noqa: S603
    return ApplyTiming(**json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", choices=["iptables", "nftables"])
    parser.add_argument("count", type=int)
    parser.add_argument("netns")
    args = parser.parse_args()
    sys.stdout.write(json.dumps(asdict(measure(backend_for(args.backend, args.netns), args.count))))


if __name__ == "__main__":
    main()
