"""The bench's lab: one container publishing a rate port and an iperf3 port, servers in it."""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dockwall.compile.ir import Endpoint
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.model.state import Bridge
from dockwall.runner import SubprocessRunner

RATE_PORT = 9000
IPERF_PORT = 5201
CONTAINER = "bench"
HERE = Path(__file__).resolve().parent
SERVER_LIFETIME = 900


@dataclass
class BenchLab:
    """A lab plus what the bench started in it, so teardown stops exactly that."""

    lab: Lab
    netns: str
    endpoints: tuple[Endpoint, ...]
    bridges: tuple[Bridge, ...]
    pids: list[int] = field(default_factory=list)

    @property
    def container(self) -> SubprocessRunner:
        return SubprocessRunner(netns=self.netns)

    def start_servers(self) -> None:
        log = str(self.lab.names.state_dir / "bench-servers.log")
        acceptor = [
            sys.executable,
            str(HERE / "accept_loop.py"),
            str(RATE_PORT),
            str(SERVER_LIFETIME),
        ]
        self.pids.append(self.container.spawn(acceptor, log_path=log))
        self.pids.append(
            self.container.spawn(["iperf3", "-s", "-p", str(IPERF_PORT)], log_path=log)
        )
        self.wait_listening()

    def wait_listening(self) -> None:
        for _ in range(100):
            listening = self.container.run(["ss", "-ltnH"]).stdout
            if all(f":{port} " in listening for port in (RATE_PORT, IPERF_PORT)):
                return
            self.container.run(["sleep", "0.1"])
        raise RuntimeError("bench servers did not start listening")

    def stop_servers(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue


@contextmanager
def bench_lab(prefix: str = "p") -> Iterator[BenchLab]:
    """A fresh lab named <prefix><hex>, always torn down, whatever happens inside."""
    lab = Lab(prefix + secrets.token_hex(3))
    bench: BenchLab | None = None
    try:
        lab.up(samples=False)
        bench = start_container(lab)
        bench.start_servers()
        yield bench
    finally:
        if bench is not None:
            bench.stop_servers()
        lab.down()


def start_container(lab: Lab) -> BenchLab:
    ports = {f"{RATE_PORT}/tcp": RATE_PORT, f"{IPERF_PORT}/tcp": IPERF_PORT}
    with lab.client() as client:
        container = client.containers.run(
            t.IMAGE, ["sleep", "2147483647"], name=CONTAINER, detach=True, ports=ports
        )
        container.reload()
        settings = container.attrs["NetworkSettings"]["Networks"]["bridge"]
        pid = container.attrs["State"]["Pid"]
    endpoints = (Endpoint("docker0", ipaddress.ip_address(settings["IPAddress"])),)
    bridges = (Bridge("bridge", "docker0"),)
    return BenchLab(lab, f"/proc/{pid}/ns/net", endpoints, bridges)
