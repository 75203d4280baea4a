"""Runs every benchmark and writes docs/benchmarks.md.

Usage: .venv/bin/python -m bench   (as root; `make bench` does the same). Each table is
measured in one run, side by side, because the machine is shared and noisy: compare
rows of one table, not numbers across runs.
"""

from __future__ import annotations

import importlib
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.bench_apply import ApplyTiming, measure_in_child
from dockwall.lab.lab import Lab
from dockwall.runner import netns_path

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTIONS = (
    ("bench.bench_datapath", "Datapath at 10,000 allowed sources (issue 4)"),
    ("bench.bench_agent", "Agent latency and memory (issue 5)"),
    ("bench.bench_drift", "Agent drift repair (issue 9: a benchmark figure, not a test deadline)"),
    ("bench.bench_agent_idle", "The agent on a quiet host: CPU and ruleset listings"),
    ("bench.bench_explain", "explain on 10,000 rules (issue 6)"),
    ("bench.bench_dns", "DNS forwarder for to_fqdn (issue 12)"),
    ("bench.bench_fqdn_datapath", "Datapath with 10,000 learned addresses (issue 12)"),
    ("bench.bench_lists", "A 1,000,000-entry list (issue 16)"),
    ("bench.bench_list_read", "An edited feed read against the last one (issue 16)"),
)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    python = platform.python_version()
    return f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}, Python {python}"


def apply_rows() -> list[ApplyTiming]:
    lab = Lab("b" + secrets.token_hex(3))
    lab.up(samples=False)
    try:
        ns = netns_path(lab.names.host_ns)
        return [
            measure_in_child(backend, count, ns)
            for count in (1000, 10000)
            for backend in ("iptables", "nftables")
        ]
    finally:
        lab.down()


def apply_table(rows: list[ApplyTiming]) -> str:
    head = (
        "| containers | backend | plan lines | parse | compile | plan (read live + diff) | "
        "apply | compile + plan + apply | total | peak RSS |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r.containers:,} | {r.backend} | {r.changes:,} | {r.parse_s:.3f} s | "
        f"{r.compile_s:.3f} s | {r.plan_s:.3f} s | {r.apply_s:.3f} s | "
        f"**{r.total_s - r.parse_s:.3f} s** | {r.total_s:.3f} s | {r.peak_rss_mb:.0f} MB |\n"
        for r in rows
    )


def section(module: str) -> str:
    """A benchmark module's own markdown, from its `run()`."""
    runner: Callable[[], str] = importlib.import_module(module).run
    return runner()


def main() -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    parts = [
        "# Benchmarks\n\n"
        f"Reproduce: `make bench` (or `.venv/bin/python -m bench`, as root). Commit {commit}; "
        f"machine: {machine()}. Each table is one run; compare rows of one table only.\n",
        "## Compile + apply (issue 3: 1,000 containers x 10 rules under 1 s; issue 4: "
        "10,000 containers under 2 s)\n\n"
        "Synthetic containers on the lab's docker0, each with 5 ingress rules (host port x "
        "source, IPv4 and IPv6) and 5 egress rules (CIDR x port); defaults deny ingress. "
        "Timed from the policy text to rules in force on an empty firewall, each row in a "
        "fresh process (peak RSS is that process's).\n\n" + apply_table(apply_rows()),
    ]
    parts += [f"## {title}\n\n{section(module)}" for module, title in SECTIONS]
    text = "\n".join(parts)
    OUT.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
