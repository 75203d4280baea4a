"""Runs the real `dockwall` command on a lab's Docker host, as a user would."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from dockwall.lab.lab import SAMPLES, Lab
from dockwall.runner import Result, SubprocessRunner, netns_path

COUNTERS = re.compile(r"\[\d+:\d+\]")
BACKEND_COMMANDS = {"apply", "plan", "status", "reset", "agent"}


@dataclass
class Dockwall:
    lab: Lab
    workdir: Path
    backend: str = "iptables"

    def run(self, *args: str, check: bool = True) -> Result:
        """`dockwall ARGS`; commands that take a backend get this fixture's backend."""
        backend = ["--backend", self.backend] if args and args[0] in BACKEND_COMMANDS else []
        argv = [sys.executable, "-m", "dockwall", *args[:1], *backend, *args[1:]]
        return self.lab.host.run(argv, check=check, timeout=120)

    def policy(self, text: str, name: str = "policy.yaml") -> Path:
        path = self.workdir / name
        path.write_text(text)
        return path

    def apply(self, text: str, *extra: str) -> Result:
        return self.run("apply", "-f", str(self.policy(text)), *extra)

    def plan_exit(self, text: str) -> int:
        path = self.policy(text)
        return self.run("plan", "--detailed-exitcode", "-f", str(path), check=False).returncode

    def firewall(self) -> str:
        """Every iptables table of both families and the list of nftables tables.

        Counters and generation comments are removed. iptables-nft creates an empty
        built-in base chain the first time a rule goes into it and never removes it, so
        the raw nft text is not compared: iptables-save shows the same chains either way.
        """
        parts = []
        for tool in ("iptables-save", "ip6tables-save"):
            text = self.lab.host.run([tool]).stdout
            parts += [
                COUNTERS.sub("", line) for line in text.splitlines() if not line.startswith("#")
            ]
        nft = self.lab.host.run(["nft", "list", "tables"]).stdout
        return "\n".join(parts) + "\n" + nft

    def cleanup(self) -> None:
        """Back to a plain lab: no dockwall rules, only the sample containers."""
        self.run("reset")
        keep = {s.name for s in SAMPLES}
        with self.lab.client() as client:
            for container in client.containers.list(all=True):
                if container.name not in keep:
                    container.remove(force=True)


class Held:
    """A TCP connection from the lab internet, held open to see if it survives changes."""

    def __init__(self, lab: Lab, src: str, dst: str, port: int) -> None:
        argv = [sys.executable, "-m", "dockwall.lab.holder", "--src", src, "--dst", dst]
        self.proc = SubprocessRunner(netns=netns_path(lab.names.inet_ns)).interactive(
            [*argv, "--port", str(port)]
        )

    def __enter__(self) -> Held:
        assert self.line() == "connected"
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def echo(self, message: str) -> bool:
        """True when the message came back over the same connection."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(message + "\n")
        self.proc.stdin.flush()
        return self.line() == "ok"
