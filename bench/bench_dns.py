"""DNS through dockwall's forwarder (issue 12): latency added, lookups/s, RSS.

One lab; the agent (nftables) enforces a policy where `web` (default bridge) and
`worker` (user network) are DNS clients with `*.learn.example.test`. Their partners
have no name rules, so their DNS goes straight to the lab's resolver: `plain` (a
default-bridge container the bench starts) and `db` (worker's network). On the default
bridge a container asks 192.0.2.53 itself, so `web` against `plain` measures the
forwarder alone; on the user network every lookup also crosses Docker's embedded
resolver (127.0.0.11, served by dockerd), the second table. Same run, per client:
sequential lookups of a name no rule mentions, then of new learned names (a new name
and address each time, so every answer waits for its set update; the partner asks as
many new names directly, the lab resolver's own cost for a name it has not answered
yet, the baseline of the learned row), then the sustained
rate with 64 lookups in flight (bench/dns_load.py: pre-encoded queries on raw UDP
sockets, id and question matched). Then the agent's RSS.

Reproduce: `.venv/bin/python -m bench.bench_dns [nftables|iptables]` (as root, about a
minute; nftables by default).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from dockwall.runner import SubprocessRunner

SEQUENTIAL = 300
RATE_SECONDS = 3.0
IN_FLIGHT = 64
PLAIN = "plain.example.test"
METRICS = "http://127.0.0.1:9771/metrics"
POLICY = """\
version: 1
containers:
  - name: web
    egress:
      - to_fqdn: ["*.learn.example.test"]
        port: 443/tcp
  - name: worker
    egress:
      - to_fqdn: ["*.learn.example.test"]
        port: 443/tcp
"""
LEARNED_RANGES = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24")


@dataclass(frozen=True)
class Pair:
    """A client of the forwarder and its partner with no name rules, on one network."""

    title: str
    server: str
    client: str
    direct: str
    first_name: int


PAIRS = (
    Pair("default bridge: the forwarder alone", t.DNS_V4, "web", "plain", 0),
    Pair("user network: through Docker's embedded resolver", "127.0.0.11", "worker", "db", 1),
)


def learned_addresses(count: int) -> list[str]:
    """Distinct lab addresses for the first 762, so every learned name needs a set
    update of its own; then again from the start (for names asked only directly)."""
    hosts = [h for r in LEARNED_RANGES for h in ipaddress.ip_network(r).hosts()]
    return [str(hosts[i % len(hosts)]) for i in range(count)]


def learned_names(pair: Pair) -> list[str]:
    return [f"n{i}.learn.example.test" for i in range(pair.first_name, 2 * SEQUENTIAL, 2)]


def fresh_names(pair: Pair) -> list[str]:
    """As many names as learned_names, of the same shape, asked directly (never learned)."""
    start = 2 * SEQUENTIAL + pair.first_name
    return [f"n{i}.learn.example.test" for i in range(start, 4 * SEQUENTIAL, 2)]


def zone() -> dict[str, object]:
    records = [{"name": PLAIN, "type": "A", "value": "192.0.2.100", "ttl": 300}]
    records += [
        {"name": f"n{i}.learn.example.test", "type": "A", "value": address, "ttl": 300}
        for i, address in enumerate(learned_addresses(4 * SEQUENTIAL))
    ]
    return {"records": records}


def load(lab: Lab, container: str, server: str, job: dict[str, object]) -> dict[str, object]:
    ns = Prober(lab).container_netns(container)
    result = SubprocessRunner(netns=ns).run(
        [sys.executable, "-m", "bench.dns_load"],
        input=json.dumps({"server": server, **job}),
        timeout=300,
    )
    found: dict[str, object] = json.loads(result.stdout)
    return found


def sequential(lab: Lab, container: str, server: str, names: list[str]) -> dict[str, object]:
    return load(lab, container, server, {"names": names, "parallel": 1})


def rate(lab: Lab, container: str, server: str) -> dict[str, object]:
    job = {"names": [PLAIN], "parallel": IN_FLIGHT, "seconds": RATE_SECONDS}
    return load(lab, container, server, job)


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


def ms_of(found: dict[str, object]) -> list[float]:
    return [float(m) for m in found["ms"]]  # type: ignore[attr-defined]


def per_second(found: dict[str, object]) -> float:
    return float(found["answered"]) / float(found["seconds"])  # type: ignore[arg-type]


def set_update_ms(lab: Lab) -> tuple[int, float]:
    """Held answers so far and their mean hold (the set update), from the agent's
    metrics: what of a learned lookup's time is the kernel's."""
    fetch = f"import urllib.request; print(urllib.request.urlopen('{METRICS}').read().decode())"
    text = lab.host.run([sys.executable, "-c", fetch]).stdout
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("dockwall_dns_set_update_seconds_")
    }
    count = int(values.get("dockwall_dns_set_update_seconds_count", 0))
    total = values.get("dockwall_dns_set_update_seconds_sum", 0.0)
    return count, total


def measure_pair(lab: Lab, pair: Pair) -> list[str]:
    """The markdown of one pair's table, all of it measured back to back."""
    plain = [PLAIN] * SEQUENTIAL
    direct = sequential(lab, pair.direct, pair.server, plain)
    passed = sequential(lab, pair.client, pair.server, plain)
    fresh = sequential(lab, pair.direct, pair.server, fresh_names(pair))
    held_before, seconds_before = set_update_ms(lab)
    learned = sequential(lab, pair.client, pair.server, learned_names(pair))
    held_after, seconds_after = set_update_ms(lab)
    hold_ms = (seconds_after - seconds_before) * 1e3 / max(1, held_after - held_before)
    direct_rate = rate(lab, pair.direct, pair.server)
    forwarder_rate = rate(lab, pair.client, pair.server)
    rows = []
    cases = (
        (f"direct to the lab resolver ({pair.direct})", direct),
        (f"forwarder, name no rule mentions ({pair.client})", passed),
        (f"direct, a new name each time ({pair.direct})", fresh),
        (f"forwarder, new learned name, set update ({pair.client})", learned),
    )
    for label, found in cases:
        ms = ms_of(found)
        rows.append(
            f"| {label} | {statistics.median(ms):.2f} ms | {percentile(ms, 0.99):.2f} ms | "
            f"{found['failed']} |"
        )
    added = [
        (
            statistics.median(ms_of(f)) - statistics.median(ms_of(base)),
            percentile(ms_of(f), 0.99) - percentile(ms_of(base), 0.99),
        )
        for f, base in ((passed, direct), (learned, fresh), (learned, direct))
    ]
    return [
        f"**{pair.title}** (server {pair.server}; load average before: {loadavg()})",
        "",
        f"| lookups (sequential, {SEQUENTIAL} each) | p50 | p99 | failed |",
        "| --- | ---: | ---: | ---: |",
        *rows,
        "",
        f"Added by the forwarder: p50 {added[0][0]:+.2f} ms, p99 {added[0][1]:+.2f} ms for "
        f"names no rule mentions (target < 1 ms at p99); p50 {added[1][0]:+.2f} ms, p99 "
        f"{added[1][1]:+.2f} ms for learned names against new names asked directly (target "
        f"< 3 ms at p99; against the one name asked directly: p50 {added[2][0]:+.2f} ms, p99 "
        f"{added[2][1]:+.2f} ms; of a learned lookup, the hold for the set update took "
        f"{hold_ms:.2f} ms on average). Sustained, "
        f"{IN_FLIGHT} in flight for {RATE_SECONDS:g} s: {per_second(forwarder_rate):,.0f} "
        f"lookups/s through the forwarder ({forwarder_rate['failed']} failed), "
        f"{per_second(direct_rate):,.0f}/s direct ({direct_rate['failed']} failed) "
        "(target >= 5,000/s).",
        "",
    ]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def start_plain(lab: Lab) -> None:
    with lab.client() as client:
        client.containers.run(t.IMAGE, ["sleep", "2147483647"], name="plain", detach=True)


def writer(log: Path) -> str:
    """How the agent writes learned addresses (its forwarder's start line says)."""
    for line in log.read_text().splitlines():
        if "sets written by " in line:
            return line.split("sets written by ")[1].rstrip(")")
    return "unknown"


def measure(lab: Lab, backend: str) -> str:
    lab.names.zone_file.write_text(json.dumps(zone()))
    start_plain(lab)
    workdir = Path(tempfile.mkdtemp())
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY)
    argv = [sys.executable, "-m", "dockwall", "agent", "-f", str(policy), "--backend", backend]
    pid = lab.host.spawn(argv, log_path=str(workdir / "agent.log"))
    try:
        wait_for_agent(lab)
        lines = [line for pair in PAIRS for line in measure_pair(lab, pair)]
        rss = agent_rss(pid)
    finally:
        SubprocessRunner().run(["kill", str(pid)], check=False)
    intro = __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else ""
    return "\n".join(
        [
            intro,
            "",
            f"Backend {backend}; learned addresses written by {writer(workdir / 'agent.log')}.",
            "",
            *lines,
            f"Agent RSS after the run (forwarder included): {rss} MB. Load average after: "
            f"{loadavg()}.",
            "",
            f"Reproduce: `.venv/bin/python -m bench.bench_dns {backend}` (as root).",
        ]
    )


def run(backend: str) -> str:
    lab = Lab("dnsb" + secrets.token_hex(3))
    try:
        lab.up()
        return measure(lab, backend)
    finally:
        lab.down()


if __name__ == "__main__":
    print(run(sys.argv[1] if len(sys.argv) > 1 else "nftables"))
