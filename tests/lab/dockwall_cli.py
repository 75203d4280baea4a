"""Runs the real `dockwall` command on a lab's Docker host, as a user would."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from dockwall.lab.lab import SAMPLES, Lab
from dockwall.runner import Result

COUNTERS = re.compile(r"\[\d+:\d+\]")


@dataclass
class Dockwall:
    lab: Lab
    workdir: Path
    backend: str = "iptables"

    def run(self, *args: str, check: bool = True) -> Result:
        argv = [sys.executable, "-m", "dockwall", *args]
        return self.lab.host.run(argv, check=check, timeout=120)

    def policy(self, text: str, name: str = "policy.yaml") -> Path:
        path = self.workdir / name
        path.write_text(text)
        return path

    def apply(self, text: str) -> Result:
        return self.run("apply", "--backend", self.backend, "-f", str(self.policy(text)))

    def plan_exit(self, text: str) -> int:
        path = self.policy(text)
        result = self.run(
            "plan", "--backend", self.backend, "--detailed-exitcode", "-f", str(path), check=False
        )
        return result.returncode

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
        self.run("reset", check=False)
        keep = {s.name for s in SAMPLES}
        with self.lab.client() as client:
            for container in client.containers.list(all=True):
                if container.name not in keep:
                    container.remove(force=True)
