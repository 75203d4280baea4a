"""Runs every benchmark in one lab and writes docs/benchmarks.md.

Usage: .venv/bin/python -m bench   (as root; `make bench` does the same)
"""

from __future__ import annotations

import os
import platform
import secrets
import subprocess
import sys
from pathlib import Path

from bench.bench_apply import ApplyTiming, measure_apply
from dockwall.backends.iptables import IptablesBackend
from dockwall.lab.lab import Lab

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


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


def apply_rows(lab: Lab) -> list[ApplyTiming]:
    rows = []
    for count in (1000,):
        backend = IptablesBackend(lab.host)
        rows.append(measure_apply(backend, count))
        backend.apply(backend.plan_reset())
    return rows


def apply_table(rows: list[ApplyTiming]) -> str:
    head = (
        "| containers | backend | rules added | parse | compile | plan (read live + diff) | "
        "apply (one transaction per family) | total | peak RSS |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r.containers:,} | {r.backend} | {r.rules:,} | {r.parse_s:.3f} s | "
        f"{r.compile_s:.3f} s | "
        f"{r.plan_s:.3f} s | {r.apply_s:.3f} s | **{r.total_s:.3f} s** | {r.peak_rss_mb:.0f} MB |\n"
        for r in rows
    )


def main() -> None:
    lab = Lab("b" + secrets.token_hex(3))
    lab.up(samples=False)
    try:
        rows = apply_rows(lab)
    finally:
        lab.down()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    text = (
        "# Benchmarks\n\n"
        f"Reproduce: `make bench` (or `.venv/bin/python -m bench`, as root). Commit {commit}; "
        f"machine: {machine()}. Each table is one run; compare rows of the same run only.\n\n"
        "## Compile + apply (issue 3: target under 1 s for 1,000 containers x 10 rules)\n\n"
        "Synthetic containers on the lab's docker0, each with 5 ingress rules (host port x "
        "source, IPv4 and IPv6) and 5 egress rules (CIDR x port); defaults deny ingress. "
        "Timed from the policy text to rules in force, on an empty firewall.\n\n"
        + apply_table(rows)
    )
    OUT.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
