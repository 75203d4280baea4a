"""Compile + apply time for N containers with 10 rules each, in a lab, per backend.

The containers are synthetic (a HostState built here, addresses on the lab's docker0),
because what is measured is dockwall's own work: parse, compile, read the live
ruleset, diff and load it in one transaction. Run: .venv/bin/python -m bench
"""

from __future__ import annotations

import ipaddress
import resource
import time
from dataclasses import dataclass

from dockwall.backends.base import Backend
from dockwall.compile.compiler import compile_policy
from dockwall.model.state import Attachment, Bridge, Container, HostState
from dockwall.policy import parse_policy

DOCKER0 = Bridge("bridge", "docker0", (ipaddress.ip_network("172.16.0.0/12"),))


@dataclass(frozen=True)
class ApplyTiming:
    containers: int
    backend: str
    parse_s: float
    compile_s: float
    plan_s: float
    apply_s: float
    rules: int
    peak_rss_mb: float

    @property
    def total_s(self) -> float:
        return self.parse_s + self.compile_s + self.plan_s + self.apply_s


def policy_text(count: int) -> str:
    """Each container: 5 ingress rules (port x source) and 5 egress rules (CIDR x port)."""
    lines = ["version: 1", "defaults: {ingress: deny, egress: allow}", "containers:"]
    for i in range(count):
        lines.append(f"  - name: c{i:05d}")
        lines.append("    ingress:")
        lines += [
            f'      - {{port: {8000 + k}/tcp, from: [198.51.100.{k + 1}/32, "2001:db8:{k}::/48"]}}'
            for k in range(5)
        ]
        lines.append("    egress:")
        lines += [f"      - {{to: [203.0.113.{k * 16}/28], port: {443 + k}/tcp}}" for k in range(5)]
    return "\n".join(lines) + "\n"


def host_state(count: int) -> HostState:
    containers = []
    for i in range(count):
        v4 = ipaddress.ip_address(f"172.{16 + i // 65536}.{(i // 256) % 256}.{i % 256 + 0}") + 2
        v6 = ipaddress.ip_address("2001:db8:d0c::") + 2 + i
        containers.append(
            Container(
                f"{i:012x}" * 2 + "0" * 40,
                f"c{i:05d}",
                attachments=(Attachment("bridge", "docker0", (v4, v6)),),
            )
        )
    return HostState((DOCKER0,), tuple(containers))


def measure_apply(backend: Backend, count: int) -> ApplyTiming:
    text = policy_text(count)
    state = host_state(count)
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
    return ApplyTiming(
        count,
        backend.name,
        t1 - t0,
        t2 - t1,
        t3 - t2,
        t4 - t3,
        sum(c.op == "add" for c in plan.changes),
        rss,
    )
