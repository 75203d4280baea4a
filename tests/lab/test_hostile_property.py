"""A hostile host, drawn at random: dockwall must never touch what is not its own.

Each example adds someone else's chains and rules (names and comments drawn to collide
with dockwall's), a Docker network with a random Docker-acceptable bridge name and a
container with random labels publishing a port, then applies a policy on a drawn
backend. After every apply: no user rule changed (byte-identical per chain, in order),
the plan is in sync, the policy's refusals hold for real packets, and reset gives back
the exact ruleset of before. Bounded to 8 examples (DOCKWALL_HOSTILE_EXAMPLES) so a
run stays within a few minutes.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from docker.errors import APIError
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from tests.conftest import lab_name, own_lab

from .agent_helpers import ALLOWED_V4, OTHER_V4, remove_container, run_container
from .hostile_helpers import Cli, bridge_network, firewall, saves, untouched, user_rules

pytestmark = pytest.mark.lab

PREFIXES = ("DOCKWALL-", "DOCKWALL1-", "DOCKWALL-I-", "DOCKWALL-E-", "dockwall", "")
SUFFIXES = ("FORWARD", "INPUT", "DEFAULT-I", "PEERS", "UNSEEN-E", "MINE", "0123456789ab")
COMMENTS = ("dockwall", "dockwall-chain", "dockwall-test", "dockwallish", "dockwall-created")
# What the kernel takes in an interface name (no '/', ':' or whitespace) and Docker
# passes on: quotes, shell and iptables/nft wildcard characters included.
IFNAME_CHARS = string.ascii_letters + string.digits + "-_.@\"'$\\*+%=,~^!#&()[]{}<>?|;"
NAME_CHARS = string.ascii_letters + string.digits + "_.-"
POLICY = (
    "version: 1\ndefaults: {ingress: deny}\ncontainers:\n"
    '  - name: web\n    ingress: [{port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]\n'
    "  - label: role=x\n    ingress: allow\n"
)


@dataclass(frozen=True)
class UserChain:
    tool: str
    name: str
    comments: tuple[str, ...]
    jump_from: str | None

    def add(self, index: int) -> list[list[str]]:
        source = f"10.{index}.0.1/32" if self.tool == "iptables" else f"2001:db8:{index}::1/128"
        argv = [[self.tool, "-N", self.name]]
        for comment in self.comments:
            match = ["-s", source, "-m", "comment", "--comment", comment]
            argv.append([self.tool, "-A", self.name, *match, "-j", "RETURN"])
        if self.jump_from:
            argv.append([self.tool, "-A", self.jump_from, *self.jump(source)])
        return argv

    def jump(self, source: str) -> list[str]:
        return ["-s", source, "-m", "comment", "--comment", "dockwall", "-j", self.name]

    def remove(self, index: int) -> list[list[str]]:
        source = f"10.{index}.0.1/32" if self.tool == "iptables" else f"2001:db8:{index}::1/128"
        argv = [[self.tool, "-D", self.jump_from, *self.jump(source)]] if self.jump_from else []
        return [*argv, [self.tool, "-F", self.name], [self.tool, "-X", self.name]]


chain_names = st.builds(
    lambda p, s: (p + s)[:28], st.sampled_from(PREFIXES), st.sampled_from(SUFFIXES)
).filter(lambda n: n not in ("INPUT", "FORWARD", "dockwallINPUT") and n)
user_chains = st.lists(
    st.builds(
        UserChain,
        st.sampled_from(("iptables", "ip6tables")),
        chain_names,
        st.lists(st.sampled_from(COMMENTS), max_size=2).map(tuple),
        st.sampled_from((None, "FORWARD", "INPUT")),
    ),
    max_size=3,
    unique_by=lambda c: (c.tool, c.name),
)
bridge_names = st.text(IFNAME_CHARS, min_size=1, max_size=15).filter(
    lambda n: n not in (".", "..") and not n.startswith(("veth", "lo", "uplink", "docker"))
)
docker_names = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,20}", fullmatch=True)
labels = st.dictionaries(
    st.sampled_from(("role", "ROLE", "role ", "dockwall.ingress", "com.docker.compose.project")),
    st.sampled_from(("x", "X", "x ", "", "[{from: [any]}]", "[{from: [300.0.0.1]}]")),
    max_size=3,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with own_lab(lab_name("h")) as lab:
        yield lab


@pytest.mark.timeout(1500)  # about 15 s an example on a busy machine, lab setup aside
@settings(
    max_examples=int(os.environ.get("DOCKWALL_HOSTILE_EXAMPLES", "8")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    backend=st.sampled_from(("iptables", "nftables")),
    chains=user_chains,
    bridge=bridge_names,
    network=docker_names,
    container=docker_names,
    container_labels=labels,
)
def test_a_random_hostile_host_keeps_every_user_rule_and_every_refusal(
    lab: Lab,
    prober: Prober,
    tmp_path: Path,
    backend: str,
    chains: list[UserChain],
    bridge: str,
    network: str,
    container: str,
    container_labels: dict[str, str],
) -> None:
    cli = Cli(lab, tmp_path, backend=backend)
    cli.cleanup()
    add = [argv for i, c in enumerate(chains) for argv in c.add(i + 1)]
    remove = [argv for i, c in enumerate(chains) for argv in c.remove(i + 1)]
    name = f"n{network}"[:20]
    try:
        bridge_network(lab, name, bridge)
        run_container(lab, f"c{container}", {"80/tcp": 9901}, network=name, labels=container_labels)
    except APIError:
        cli.cleanup()
        reject()
    try:
        with user_rules(lab, add, remove):
            before, before_text = saves(lab), firewall(lab)
            cli.apply_text(POLICY)
            assert untouched(before, saves(lab)) == []
            assert cli.in_sync(POLICY)
            assert prober.probe(ALLOWED_V4, "host:8080/tcp")
            assert not prober.probe(OTHER_V4, "host:8080/tcp")
            opened = container_labels.get("role") == "x" or (
                container_labels.get("dockwall.ingress") == "[{from: [any]}]"
            )
            assert prober.probe(OTHER_V4, "host:9901/tcp") == opened, (bridge, container_labels)
            cli.run("reset")
            assert firewall(lab) == before_text
    finally:
        remove_container(lab, f"c{container}")
        cli.cleanup()
