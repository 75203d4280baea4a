"""The two measurements, both from the lab internet to the published ports."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from bench.datapath.labsetup import HERE, IPERF_PORT, RATE_PORT, BenchLab
from dockwall.lab import topology as t
from dockwall.lab.netns import in_ns
from dockwall.lab.probe import Prober

SOURCE = "192.0.2.100"
BLOCKED_SOURCE = "192.0.2.7"


@dataclass(frozen=True)
class Sample:
    connections_per_second: float
    failed_connections: int
    gbit_per_second: float
    blocks_others: bool


def sample(bench: BenchLab, seconds: float) -> Sample:
    rate, failed = connection_rate(bench, seconds)
    return Sample(rate, failed, throughput(bench, seconds), blocks_others(bench))


def connection_rate(bench: BenchLab, seconds: float) -> tuple[float, int]:
    argv = [
        sys.executable, str(HERE / "connect_loop.py"),
        t.HOST_UPLINK_V4, str(RATE_PORT), SOURCE, str(seconds),
    ]  # fmt: skip
    result = in_ns(bench.lab.names.inet_ns).run(argv, timeout=seconds + 60)
    counts = json.loads(result.stdout)
    return counts["opened"] / counts["seconds"], int(counts["failed"])


def throughput(bench: BenchLab, seconds: float) -> float:
    """Bulk TCP as iperf3's receiver saw it, in Gbit/s."""
    argv = [
        "iperf3", "-c", t.HOST_UPLINK_V4, "-p", str(IPERF_PORT), "-B", SOURCE,
        "-t", str(seconds), "-J",
    ]  # fmt: skip
    result = in_ns(bench.lab.names.inet_ns).run(argv, timeout=seconds + 60)
    report = json.loads(result.stdout)
    return float(report["end"]["sum_received"]["bits_per_second"]) / 1e9


def blocks_others(bench: BenchLab) -> bool:
    """Whether a source outside the allowlist is refused: proof the setup is in force."""
    return not Prober(bench.lab).probe(BLOCKED_SOURCE, f"host:{RATE_PORT}/tcp")
