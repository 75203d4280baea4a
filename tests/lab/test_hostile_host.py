"""Regressions from a hostile pass over the live host (issue 10, items 1-4, 8 and 9).

Every test runs on both backends in a lab of its own (named `ow...`), with real packets
through the lab's dockerd. Probes that must be refused are paired with one showing the
same port answers without dockwall, so a refusal is never vacuous.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockwall.lab.image import rootfs_tar
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from tests.conftest import lab_name, own_lab

from .agent_helpers import (
    ALLOWED_V4,
    ALLOWED_V6,
    OTHER_V4,
    OTHER_V6,
    Agents,
    addresses,
    remove_container,
    rules_naming,
    run_container,
    wait_until,
)
from .hostile_helpers import Cli, bridge_network, firewall, ipsets, saves, untouched, user_rules

pytestmark = pytest.mark.lab

DENY = "version: 1\ndefaults: {ingress: deny, egress: deny}\n"
WEB = (
    "containers:\n  - name: web\n"
    '    ingress: [{port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]\n'
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with own_lab(lab_name("ow")) as lab:
        yield lab


@pytest.fixture(params=["iptables", "nftables"])
def cli(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cli]:
    cli = Cli(lab, tmp_path, backend=request.param)
    cli.cleanup()
    try:
        yield cli
    finally:
        cli.cleanup()


def refused_then_open(prober: Prober, cli: Cli, source: str, destination: str) -> None:
    """Refused now; open once dockwall is gone (so the refusal meant something)."""
    assert not prober.probe(source, destination), f"{source} reached {destination}"
    cli.run("reset")
    assert prober.probe(source, destination), f"{destination} does not answer at all"


# --- item 9: reset returns the ruleset exactly --------------------------------------


def test_reset_returns_every_listing_exactly_as_before(cli: Cli, lab: Lab) -> None:
    """iptables-save, ip6tables-save and `nft list ruleset`: no leftover `chain INPUT`
    in ip filter / ip6 filter made by iptables-nft for our hook."""
    before, sets = firewall(lab), ipsets(lab)
    many = ", ".join(f"192.0.2.{i}" for i in range(1, 20))
    cli.apply_text(DENY + WEB + f"  - name: db\n    ingress: [{{from: [{many}]}}]\n")
    assert firewall(lab) != before
    cli.run("reset")
    assert firewall(lab) == before
    assert ipsets(lab) == sets


# --- item 1: exact ownership -----------------------------------------------------------

USER_ADD = [
    [
        "iptables",
        "-A",
        "INPUT",
        "-s",
        "10.9.9.9/32",
        "-m",
        "comment",
        "--comment",
        "dockwall-test",
        "-j",
        "ACCEPT",
    ],
    [
        "iptables",
        "-A",
        "INPUT",
        "-s",
        "10.9.9.8/32",
        "-m",
        "comment",
        "--comment",
        "dockwallish",
        "-j",
        "DROP",
    ],
    [
        "iptables",
        "-A",
        "INPUT",
        "-s",
        "10.9.9.7/32",
        "-m",
        "comment",
        "--comment",
        "dockwall",
        "-j",
        "ACCEPT",
    ],
    ["iptables", "-N", "DOCKWALL-MINE"],
    ["iptables", "-A", "DOCKWALL-MINE", "-s", "10.8.8.8/32", "-j", "LOG"],
    ["iptables", "-A", "FORWARD", "-s", "10.8.8.8/32", "-j", "DOCKWALL-MINE"],
    ["iptables", "-N", "DOCKWALL-FORWARD"],
    ["iptables", "-A", "DOCKWALL-FORWARD", "-s", "10.7.7.7/32", "-j", "RETURN"],
    [
        "iptables",
        "-A",
        "FORWARD",
        "-s",
        "10.7.7.7/32",
        "-m",
        "comment",
        "--comment",
        "dockwall",
        "-j",
        "DOCKWALL-FORWARD",
    ],
    ["iptables", "-N", "DOCKWALL-I-foo"],
    ["ip6tables", "-N", "DOCKWALL-MINE"],
    ["ip6tables", "-A", "DOCKWALL-MINE", "-s", "2001:db8:8::8/128", "-j", "LOG"],
    ["ip6tables", "-A", "FORWARD", "-s", "2001:db8:8::8/128", "-j", "DOCKWALL-MINE"],
    ["ipset", "create", "dockwall-mine", "hash:net"],
    ["ipset", "add", "dockwall-mine", "10.6.6.0/24"],
    ["ipset", "create", "dockwall-0123456789abcdef", "hash:net"],
]
USER_REMOVE = [
    [
        "iptables",
        "-D",
        "INPUT",
        "-s",
        "10.9.9.9/32",
        "-m",
        "comment",
        "--comment",
        "dockwall-test",
        "-j",
        "ACCEPT",
    ],
    [
        "iptables",
        "-D",
        "INPUT",
        "-s",
        "10.9.9.8/32",
        "-m",
        "comment",
        "--comment",
        "dockwallish",
        "-j",
        "DROP",
    ],
    [
        "iptables",
        "-D",
        "INPUT",
        "-s",
        "10.9.9.7/32",
        "-m",
        "comment",
        "--comment",
        "dockwall",
        "-j",
        "ACCEPT",
    ],
    ["iptables", "-D", "FORWARD", "-s", "10.8.8.8/32", "-j", "DOCKWALL-MINE"],
    [
        "iptables",
        "-D",
        "FORWARD",
        "-s",
        "10.7.7.7/32",
        "-m",
        "comment",
        "--comment",
        "dockwall",
        "-j",
        "DOCKWALL-FORWARD",
    ],
    ["iptables", "-F", "DOCKWALL-MINE"],
    ["iptables", "-X", "DOCKWALL-MINE"],
    ["iptables", "-F", "DOCKWALL-FORWARD"],
    ["iptables", "-X", "DOCKWALL-FORWARD"],
    ["iptables", "-X", "DOCKWALL-I-foo"],
    ["ip6tables", "-D", "FORWARD", "-s", "2001:db8:8::8/128", "-j", "DOCKWALL-MINE"],
    ["ip6tables", "-F", "DOCKWALL-MINE"],
    ["ip6tables", "-X", "DOCKWALL-MINE"],
    ["ipset", "destroy", "dockwall-mine"],
    ["ipset", "destroy", "dockwall-0123456789abcdef"],
]


def test_rules_and_chains_named_or_commented_like_ours_are_never_touched(
    cli: Cli, lab: Lab, agents: Agents, prober: Prober
) -> None:
    """`--comment dockwall-test`, `dockwallish`, chains DOCKWALL-MINE (with a jump to it),
    DOCKWALL-I-foo and even DOCKWALL-FORWARD, sets dockwall-*: apply, the agent's drift
    repair and reset leave every one as it was; dockwall picks free names for its own."""
    with user_rules(lab, USER_ADD, USER_REMOVE):
        before, before_text, sets = saves(lab), firewall(lab), ipsets(lab)
        many = ", ".join(f"192.0.2.{i}" for i in range(1, 20))
        text = DENY + WEB + f"  - name: db\n    ingress: [{{from: [{many}]}}]\n"
        cli.apply_text(text)
        assert untouched(before, saves(lab)) == []
        assert cli.in_sync(text)
        assert prober.probe(ALLOWED_V4, "host:8080/tcp")
        assert not prober.probe(OTHER_V4, "host:8080/tcp")
        agent = agents.start(cli.policy(text, "agent.yaml"), backend=cli.backend)
        agent.wait_ready()
        reconciles = agent.mine()["reconciles"]
        lab.host.run(["iptables", "-N", "DOCKWALL-LATE"])
        lab.host.run(["iptables", "-A", "DOCKWALL-LATE", "-s", "10.5.5.5/32", "-j", "LOG"])
        try:
            wait_until(lambda: False, 3.0)
            assert "DOCKWALL-LATE" in lab.host.run(["iptables-save", "-t", "filter"]).stdout
            state = agent.mine()
            assert state["last_error"] is None, agent.log()
            assert state["reconciles"] >= reconciles
        finally:
            agents.stop_all()
            lab.host.run(["iptables", "-F", "DOCKWALL-LATE"], check=False)
            lab.host.run(["iptables", "-X", "DOCKWALL-LATE"], check=False)
        assert untouched(before, saves(lab)) == []
        cli.run("reset")
        assert firewall(lab) == before_text
        assert ipsets(lab) == sets


# --- item 2: every Docker network fail-closed ---------------------------------------


@pytest.mark.parametrize("bridge", ["mybr0", "br_x", None])
def test_networks_created_while_no_agent_runs_are_held_whatever_their_bridge_is_called(
    cli: Cli, lab: Lab, prober: Prober, bridge: str | None
) -> None:
    cli.apply_text(DENY + WEB)
    bridge_network(lab, "late", bridge)
    run_container(lab, "onlate", {"80/tcp": 9801}, network="late")
    assert not prober.probe("container:onlate", "203.0.113.10:80/tcp"), "egress held"
    assert prober.probe(ALLOWED_V4, "host:8080/tcp"), "everyone else as before"
    refused_then_open(prober, cli, OTHER_V4, "host:9801/tcp")
    assert prober.probe("container:onlate", "203.0.113.10:80/tcp")


# --- item 4: hostile names ------------------------------------------------------------


@pytest.mark.parametrize("bridge", ['q"q', "a+", "x*", "d$'\\"])
def test_a_bridge_name_that_cannot_be_written_never_fails_the_load(
    cli: Cli, lab: Lab, prober: Prober, bridge: str
) -> None:
    bridge_network(lab, "odd", bridge)
    run_container(lab, "oddc", {"80/tcp": 9803}, network="odd")
    run_container(lab, "oddfree", {"80/tcp": 9804}, network="odd")
    text = DENY + WEB + "  - name: oddc\n    ingress: [{port: 9803/tcp, from: [192.0.2.100]}]\n"
    result = cli.apply_text(text)
    assert "cannot be written" in result.stderr and bridge in result.stderr
    assert cli.in_sync(text)
    assert prober.probe(ALLOWED_V4, "host:8080/tcp")
    assert prober.probe(ALLOWED_V4, "host:9803/tcp"), "its own rules, matched by address"
    assert not prober.probe(OTHER_V4, "host:9803/tcp")
    refused_then_open(prober, cli, OTHER_V4, "host:9804/tcp")


# --- item 3: one container never freezes the others -----------------------------------

CONFLICT = DENY + (
    "containers:\n"
    "  - name: giver\n"
    '    ingress: [{from: [192.0.2.100, "2001:db8:100::100"]}]\n'
    "  - label: role=a\n    ingress: allow\n"
    "  - label: team=b\n    ingress: allow\n"
)
OLD = ("172.30.0.50", "2001:db8:d0c:1::50")


def test_two_matching_entries_hold_one_container_and_nothing_is_inherited(
    cli: Cli, lab: Lab, agents: Agents, prober: Prober
) -> None:
    """The agent keeps reconciling everyone while one container is matched twice: the
    rules of a container that is gone leave with it, and its address is inherited by
    nobody (the issue: the heir reached web's port through web's leftover rules)."""
    agent = agents.start(cli.policy(CONFLICT), backend=cli.backend)
    agent.wait_ready()
    run_container(lab, "giver", {"80/tcp": 9805}, network="shop", ipv4=OLD[0], ipv6=OLD[1])
    assert wait_until(lambda: prober.probe(ALLOWED_V4, "host:9805/tcp"), 10.0) is not None
    reconciles = agent.mine()["reconciles"]
    run_container(lab, "twolabels", {"80/tcp": 9806}, labels={"role": "a", "team": "b"})
    agent.wait_reconciled_after(reconciles)
    remove_container(lab, "giver")
    heir = run_container(lab, "heir", {"80/tcp": 9805}, network="shop", ipv4=OLD[0], ipv6=OLD[1])
    assert addresses(heir) == list(OLD)
    assert wait_until(lambda: all(rules_naming(lab, a) == [] for a in OLD), 10.0) is not None
    assert not prober.probe(ALLOWED_V6, "host:9805/tcp"), "giver's rules left with it"
    assert not prober.probe(OTHER_V4, "host:9806/tcp"), "the twice-matched one is held"
    assert "twolabels" in agent.log() and "held closed" in agent.log()
    assert "previous rules stay in force" not in agent.log(), agent.log()
    agents.stop_all()
    refused_then_open(prober, cli, ALLOWED_V4, "host:9805/tcp")


def test_two_labels_matching_two_entries_hold_that_container_closed_and_apply_goes_on(
    cli: Cli, lab: Lab, agents: Agents, prober: Prober
) -> None:
    run_container(lab, "twolabels", {"80/tcp": 9808}, labels={"role": "a", "team": "b"})
    run_container(lab, "onelabel", {"80/tcp": 9809}, labels={"role": "a"})
    text = DENY + (
        "containers:\n  - label: role=a\n    ingress: allow\n"
        "  - label: team=b\n    ingress: allow\n"
    )
    result = cli.apply_text(text)
    assert "'twolabels'" in result.stderr and "held closed" in result.stderr
    assert cli.on("apply", "--strict", "-f", str(cli.policy(text)), check=False).returncode == 5
    assert prober.probe(OTHER_V4, "host:9809/tcp"), "the other container reconciled"
    agent = agents.start(cli.policy(text, "agent.yaml"), backend=cli.backend)
    agent.wait_ready()
    reconciles = agent.mine()["reconciles"]
    run_container(lab, "latecomer", {"80/tcp": 9810}, labels={"role": "a"})
    agent.wait_reconciled_after(reconciles)
    assert wait_until(lambda: prober.probe(OTHER_V4, "host:9810/tcp"), 10.0) is not None
    assert not prober.probe(OTHER_V4, "host:9808/tcp")
    assert "twolabels" in agent.log()
    agents.stop_all()
    refused_then_open(prober, cli, OTHER_V4, "host:9808/tcp")


def test_apply_does_not_refuse_the_host_over_one_bad_label(
    cli: Cli, lab: Lab, prober: Prober
) -> None:
    run_container(
        lab, "badlabel", {"80/tcp": 9811}, labels={"dockwall.ingress": "[{from: [300.1.1.1]}]"}
    )
    text = DENY + WEB
    result = cli.apply_text(text)
    assert "badlabel" in result.stderr and "label ignored" in result.stderr
    assert prober.probe(ALLOWED_V4, "host:8080/tcp")
    assert not prober.probe(OTHER_V4, "host:8080/tcp")
    strict = cli.on("apply", "--strict", "-f", str(cli.policy(text)), check=False)
    assert strict.returncode == 5 and "badlabel" in strict.stderr
    assert cli.in_sync(text), "--strict applies everything, then says so"
    refused_then_open(prober, cli, OTHER_V4, "host:9811/tcp")


# --- item 8: image labels through `label:` entries -------------------------------------

IMAGE = "dwlab/rolex"


def test_image_labels_never_match_label_entries(cli: Cli, lab: Lab, prober: Prober) -> None:
    with lab.client() as client:
        client.api.import_image_from_data(
            rootfs_tar(), repository=IMAGE, tag="latest", changes=["LABEL role=x"]
        )
    run_container(lab, "fromimage", {"80/tcp": 9812}, image=f"{IMAGE}:latest")
    run_container(lab, "ownrole", {"80/tcp": 9813}, labels={"role": "x"})
    cli.apply_text(DENY + "containers:\n  - label: role=x\n    ingress: allow\n")
    assert prober.probe(OTHER_V4, "host:9813/tcp")
    assert prober.probe(OTHER_V6, "host:9813/tcp")
    assert not prober.probe(OTHER_V6, "host:9812/tcp")
    refused_then_open(prober, cli, OTHER_V4, "host:9812/tcp")


# --- a table of our name that is not ours ----------------------------------------------


def test_a_foreign_inet_dockwall_table_is_refused_clearly_and_left_alone(
    lab: Lab, tmp_path: Path
) -> None:
    """nftables only: the iptables backend has no table of its own."""
    cli = Cli(lab, tmp_path, backend="nftables")
    cli.cleanup()
    with user_rules(
        lab,
        [
            ["nft", "add", "table", "inet", "dockwall"],
            ["nft", "add", "chain", "inet", "dockwall", "mine"],
        ],
        [["nft", "delete", "table", "inet", "dockwall"]],
    ):
        before = firewall(lab)
        result = cli.apply_text(DENY + WEB, check=False)
        assert result.returncode == 1 and "not dockwall's" in result.stderr
        assert "Traceback" not in result.stderr
        cli.run("reset")
        assert firewall(lab) == before
