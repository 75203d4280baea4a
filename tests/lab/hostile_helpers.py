"""Helpers for the hostile-host tests: the firewall as text, user rules, Docker networks.

Ownership is judged here without dockwall's own code: whatever was in the firewall before
dockwall ran is the user's, and must still be there, unchanged and in the same order.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from docker.errors import APIError, NotFound

from dockwall.lab.lab import SAMPLES, Lab
from dockwall.runner import Result

from .agent_helpers import LabCli

COUNTERS = re.compile(r"\[\d+:\d+\]")
NFT_COUNTER = re.compile(r"counter packets \d+ bytes \d+")
HOOK = re.compile(r"^-A (\S+) -m comment --comment dockwall -j (\S+)$")


def firewall(lab: Lab) -> str:
    """iptables-save, ip6tables-save and `nft list ruleset`, counters and comments aside."""
    parts = []
    for argv in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]):
        text = lab.host.run(argv).stdout
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            parts.append(NFT_COUNTER.sub("counter", COUNTERS.sub("", line)))
    return "\n".join(parts) + "\n"


def ipsets(lab: Lab) -> str:
    return lab.host.run(["ipset", "save"]).stdout


def chains_of(save: str) -> dict[str, list[str]]:
    """`-A` lines per chain of one iptables-save text (all tables, in order)."""
    found: dict[str, list[str]] = {}
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            found.setdefault(f"{table}/{line[1:].split()[0]}", [])
        elif line.startswith("-A "):
            chain = line.split()[1]
            found.setdefault(f"{table}/{chain}", []).append(COUNTERS.sub("", line))
    return found


def saves(lab: Lab) -> dict[str, dict[str, list[str]]]:
    return {
        tool: chains_of(lab.host.run([tool]).stdout) for tool in ("iptables-save", "ip6tables-save")
    }


def untouched(
    before: dict[str, dict[str, list[str]]], now: dict[str, dict[str, list[str]]]
) -> list[str]:
    """What of `before` (the user's and Docker's) changed in `now`: every chain still there
    with the same rules in the same order, once the chains that are new since and the
    exact hooks into them (dockwall's) are set aside."""
    problems = []
    for tool, chains in before.items():
        current = now[tool]
        new = {name.split("/", 1)[1] for name in current} - {n.split("/", 1)[1] for n in chains}
        for name, rules in chains.items():
            if name not in current:
                problems.append(f"{tool} {name}: chain gone")
                continue
            kept = [r for r in current[name] if not is_new_hook(r, new)]
            if kept != rules:
                problems.append(f"{tool} {name}: {rules} became {kept}")
    return problems


def is_new_hook(rule: str, new: set[str]) -> bool:
    match = HOOK.match(rule)
    return match is not None and (match[2] in new or match[2] == "DOCKER-USER")


@contextlib.contextmanager
def user_rules(
    lab: Lab, add: Sequence[Sequence[str]], remove: Sequence[Sequence[str]]
) -> Iterator[None]:
    """Commands that add someone else's rules, and those that take them away again."""
    try:
        for argv in add:
            lab.host.run(list(argv))
        yield
    finally:
        for argv in remove:
            lab.host.run(list(argv), check=False)


@dataclass
class Cli(LabCli):
    """LabCli on a chosen backend."""

    backend: str = "iptables"

    def on(self, *args: str, check: bool = True) -> Result:
        command, *rest = args
        return self.run(command, "--backend", self.backend, *rest, check=check)

    def apply_text(self, text: str, *extra: str, check: bool = True) -> Result:
        return self.on("apply", "-f", str(self.policy(text)), *extra, check=check)

    def in_sync(self, text: str) -> bool:
        path = self.policy(text)
        result = self.on("plan", "--detailed-exitcode", "-f", str(path), check=False)
        return result.returncode == 0

    def cleanup(self) -> None:
        """Back to a plain lab: no dockwall rules, the sample containers and networks only."""
        self.run("reset", check=False)
        keep = {s.name for s in SAMPLES}
        with self.lab.client() as client:
            for container in client.containers.list(all=True):
                if container.name not in keep:
                    container.remove(force=True)
            for network in client.networks.list():
                if network.name not in ("bridge", "host", "none", "shop"):
                    with contextlib.suppress(NotFound, APIError):
                        network.remove()


def bridge_network(lab: Lab, name: str, bridge: str | None = None) -> None:
    options = {"com.docker.network.bridge.name": bridge} if bridge else {}
    with lab.client() as client:
        client.networks.create(name, driver="bridge", options=options)
