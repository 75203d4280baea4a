"""The drop log's reader: throughput without loss, and its CPU and memory at 1,000 drops/s.

Inside the Docker host namespace of a lab of its own (never the machine's own), a table
`inet dwbench` logs UDP packets to one port through a named limit, exactly as dockwall's
drop rules do (`limit name ... counter log prefix ... group G snaplen 128`). A sender
process offers packets at a fixed rate; the reader (NflogReader, record parsing and
the journal write, as in the agent) counts what arrives. For each case: records the
kernel sent (the log rule's counter), records read, records lost (sequence gaps,
ENOBUFS), and the reader process's CPU share and peak RSS.

Cases: the default limit (20/s, burst 50) and ten times it (200/s, burst 500) under an
offered 1,000 packets/s; a 1,000/s limit under 1,000 packets/s (the agent's cost at
1,000 drops/s); and no limit at all under a 20,000 packets/s blast (the ceiling).

Reproduce (as root): .venv/bin/python -m bench.bench_nflog
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

from dockwall.lab.lab import Lab
from dockwall.observe.history import AddressHistory
from dockwall.observe.journal import Journal
from dockwall.observe.nflog import NflogReader
from dockwall.observe.service import DropLogService
from dockwall.runner import SubprocessRunner, netns_path

RUN = SubprocessRunner()

GROUP = 2799
PORT = 9999
SECONDS = 5.0
CASES = (
    ("default limit 20/s burst 50", "limit rate 20/second burst 50 packets", 1000),
    ("10x: 200/s burst 500", "limit rate 200/second burst 500 packets", 1000),
    ("1,000 drops/s logged", "limit rate 1000/second burst 1000 packets", 1000),
    ("no limit (ceiling)", "", 20000),
)
SENDER = """
import socket, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic(); sent = 0
while (now := time.monotonic()) - start < seconds:
    due = int((now - start) * rate)
    while sent < due:
        s.sendto(b"x", ("127.0.0.1", int(sys.argv[3]))); sent += 1
    time.sleep(0.001)
print(sent)
"""


def table(limit: str) -> str:
    return (
        "table inet dwbench {\n chain out {\n  type filter hook output priority 0;\n"
        f'  udp dport {PORT} {limit} counter log prefix "dw:i:d" group {GROUP} snaplen 128\n'
        " }\n}\n"
    )


def log_counter() -> int:
    listing = RUN.run(["nft", "-j", "list", "table", "inet", "dwbench"]).stdout
    for item in json.loads(listing)["nftables"]:
        for statement in item.get("rule", {}).get("expr", []):
            if "counter" in statement:
                return int(statement["counter"]["packets"])
    return 0


def settle(counts: dict[str, int]) -> None:
    """Until no record arrived for a second (at most 30 s): a backlog is read, not lost."""
    last, quiet_since = -1, time.monotonic()
    for _ in range(300):
        if counts["records"] != last:
            last, quiet_since = counts["records"], time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        time.sleep(0.1)


def run_case(limit: str, rate: float) -> dict[str, object]:
    RUN.run(["nft", "-f", "-"], input=table(limit))
    reader = NflogReader(GROUP)
    with tempfile.TemporaryDirectory() as tmp:
        service = DropLogService(
            "policy.yaml", AddressHistory(), Journal(Path(tmp) / "d.jsonl"), print
        )
        stop = threading.Event()
        counts = {"records": 0, "lost": 0}

        def read() -> None:
            while not stop.is_set():
                entries = [service.entry(item) for item in reader.read(0.2)]
                counts["records"] += sum(1 for e in entries if e["kind"] == "drop")
                counts["lost"] += sum(1 for e in entries if e["kind"] == "lost")
                service.journal.write(entries)

        thread = threading.Thread(target=read)
        cpu0, wall0 = time.process_time(), time.monotonic()
        thread.start()
        sender = RUN.run([sys.executable, "-c", SENDER, str(rate), str(SECONDS), str(PORT)])
        settle(counts)
        stop.set()
        thread.join()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    reader.close()
    sent_by_kernel = log_counter()
    RUN.run(["nft", "delete", "table", "inet", "dwbench"])
    return {
        "offered": int(sender.stdout.strip() or 0),
        "kernel_logged": sent_by_kernel,
        "read": counts["records"],
        "lost_markers": counts["lost"],
        "lost_records": service.stats.lost,
        "overruns": service.stats.overruns,
        "cpu_percent": round(100 * cpu / wall, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def inside() -> None:
    RUN.run(["ip", "link", "set", "lo", "up"])
    results = {name: run_case(limit, rate) for name, limit, rate in CASES}
    print(json.dumps(results))


def main() -> None:
    if sys.argv[1:] == ["--inside"]:
        inside()
        return
    lab = Lab(os.environ.get("DOCKWALL_LAB_PREFIX", "") + "n" + secrets.token_hex(3))
    try:
        lab.up(samples=False)
        inside_lab = SubprocessRunner(netns=netns_path(lab.names.host_ns))
        out = inside_lab.run([sys.executable, "-m", "bench.bench_nflog", "--inside"]).stdout
    finally:
        lab.down()
    results = json.loads(out.strip().splitlines()[-1])
    print("| case | offered pkt | kernel logged | read | lost | overruns | reader CPU | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['offered']} | {r['kernel_logged']} | {r['read']} | "
              f"{r['lost_records']} | {r['overruns']} | {r['cpu_percent']} % | "
              f"{r['peak_rss_mib']} MiB |")  # fmt: skip


if __name__ == "__main__":
    main()
