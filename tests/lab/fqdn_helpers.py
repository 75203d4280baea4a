"""Helpers for the to_fqdn lab tests: the lab's zone, resolve-then-connect from a
container, and a held TCP connection that must outlive its address's expiry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from dockwall.runner import SubprocessRunner

EMBEDDED = "127.0.0.11"
MANY_PORT = 9443
HOLD_CLIENT = """
import socket, sys
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
conn.recv(64)
print("connected", flush=True)
for line in sys.stdin:
    conn.sendall(line.strip().encode())
    print(conn.recv(64).decode(), flush=True)
"""


def write_zone(lab: Lab, zone: dict[str, Any]) -> None:
    """Atomically, so the server never reads half a file."""
    path = lab.names.zone_file
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(zone))
    os.replace(tmp, path)


def a(name: str, value: str, ttl: int = 300) -> dict[str, Any]:
    kind = "AAAA" if ":" in value else "A"
    return {"name": name, "type": kind, "value": value, "ttl": ttl}


def cname(name: str, target: str, ttl: int = 60) -> dict[str, Any]:
    return {"name": name, "type": "CNAME", "value": target, "ttl": ttl}


def resolve_connect(
    lab: Lab, container: str, lookups: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One resolveprobe process in the container's namespace runs the whole batch."""
    return resolve_connect_counted(lab, container, lookups)[0]


def resolve_connect_counted(
    lab: Lab, container: str, lookups: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """The results and how many SYNs the container's kernel had to send again."""
    ns = Prober(lab).container_netns(container)
    result = SubprocessRunner(netns=ns).run(
        [sys.executable, "-m", "dockwall.lab.resolveprobe"],
        input=json.dumps(lookups),
        timeout=120,
    )
    found: dict[str, Any] = json.loads(result.stdout)
    return found["results"], int(found["syn_retransmits"])


def outcomes(result: dict[str, Any]) -> dict[str, str]:
    return {c["address"]: c["outcome"] for c in result.get("connects", [])}


class HeldConnection:
    """A TCP connection from a container, kept open, that echoes on request."""

    def __init__(self, lab: Lab, container: str, address: str, port: int) -> None:
        ns = Prober(lab).container_netns(container)
        argv = ["nsenter", f"--net={ns}", sys.executable, "-c", HOLD_CLIENT, address, str(port)]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def wait_connected(self) -> bool:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip() == "connected"

    def echo(self, word: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


def add_many(lab: Lab, count: int) -> list[str]:
    """`count` extra internet addresses (half IPv4, half IPv6) on the lab's internet host
    and a listener on MANY_PORT on all of them."""
    inet = SubprocessRunner(netns=f"/run/netns/{lab.names.inet_ns}")
    found = []
    for i in range(count // 2):
        v4, v6 = f"203.0.113.{100 + i}", f"2001:db8:203::1:{100 + i}"
        inet.run(["ip", "addr", "add", f"{v4}/32", "dev", "lo"])
        inet.run(["ip", "addr", "add", f"{v6}/128", "dev", "lo", "nodad"])
        found += [v4, v6]
    argv = [sys.executable, "-m", "dockwall.lab.listener", "--lab", lab.names.name]
    inet.spawn([*argv, "--tcp", str(MANY_PORT)], log_path=str(lab.names.state_dir / "many.log"))
    return found


def learned_file(lab: Lab) -> Path:
    return lab.names.state_dir / "dockwall-run" / "fqdn-learned.json"
