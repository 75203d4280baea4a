"""`dockwall agent` in a lab of its own, proven with real packets and the live ruleset.

The agent runs as a user would run it (`python -m dockwall agent -f POLICY`) inside the
lab's Docker host namespace and is always stopped by its pid. Containers whose main
process is busybox httpd answer on port 80, so a probe that connects really reached a
container. Verdicts wait for the event they need with a generous bound (EVENT_BOUND): the machine
may be busy with other labs, and a test must hold there. Timings (drift repair, time to
rules in force) are printed as figures (run with `-s`), never asserted: the benchmarks
(bench/bench_agent.py, bench/bench_drift.py) measure them.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dockwall.lab import topology as t
from dockwall.lab.image import rootfs_tar
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Probe, Prober
from dockwall.runner import SubprocessRunner, netns_path
from tests.conftest import lab_name, own_lab

from .agent_helpers import (
    ALLOWED_V4,
    ALLOWED_V6,
    EVENT_BOUND,
    OTHER_V4,
    OTHER_V6,
    Agents,
    LabCli,
    ProbeLoop,
    addresses,
    hooks_not_first,
    our_chains,
    our_part,
    remove_container,
    rules_naming,
    run_container,
    wait_until,
)

pytestmark = pytest.mark.lab

WS_PEER = str(Path(__file__).resolve().parent / "ws_peer.py")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """One lab for this module, named `a...`; overrides the session lab of conftest."""
    with own_lab(lab_name("a")) as lab:
        yield lab


def both(prober: Prober, destination: str, v4: str, v6: str) -> tuple[bool, bool]:
    return prober.probe(v4, destination), prober.probe(v6, destination)


def eventually(
    prober: Prober, source: str, destination: str, timeout: float = EVENT_BOUND
) -> float:
    elapsed = wait_until(lambda: prober.probe(source, destination), timeout, interval=0.1)
    assert elapsed is not None, f"{source} never reached {destination} within {timeout}s"
    return elapsed


# --- churn -------------------------------------------------------------------------

CHURN_POLICY = """\
version: 1
defaults: {ingress: deny, egress: deny}
containers:
  - label: churn=allowed
    ingress: [{from: [192.0.2.100]}]
    egress: [{to: [203.0.113.20], port: 7443/tcp}]
"""
CANARY_ADDR, CANARY_PORT = "203.0.113.20", 7443
CANARY = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])), backlog=512)
out = open(sys.argv[3], "a", buffering=1)
while True:
    conn, _ = server.accept()
    conn.settimeout(1.0)
    try:
        data = conn.recv(256)
    except OSError:
        data = b""
    out.write(data.decode(errors="replace").strip() + "\\n")
    conn.close()
"""
# The container's first act is to try egress, again and again: with egress denied by
# default it must never get through, not even before the agent has seen it.
CHURN_COMMAND = [
    "sh",
    "-c",
    "httpd -p 80 -h /www; "
    f"while :; do echo $NAME | nc -w 1 {CANARY_ADDR} {CANARY_PORT}; sleep 0.5; done",
]
BATCH, BATCHES = 20, 6
PROBE_TIMEOUT = 1.0  # a TCP handshake inside the lab; generous for a loaded machine


class Churn:
    """Book-keeping of one churn run: what runs where, and what the probes saw."""

    def __init__(self, lab: Lab, workdir: Path) -> None:
        self.lab = lab
        self.canary_log = workdir / "canary.log"
        self.canary_log.touch()
        self.running: dict[str, int] = {}
        self.started: dict[str, float] = {}
        self.allowed: set[str] = set()
        self.books = threading.Lock()  # guards the dicts; loop.lock waits for a round
        self.phases = {"start": 0.0, "wait": 0.0, "remove": 0.0}
        self.loop = ProbeLoop(
            lab, self.targets, timeout=PROBE_TIMEOUT, max_rounds=5000, max_seconds=1100
        )

    def targets(self) -> list[tuple[str, Probe]]:
        with self.books:
            return [
                (f"{name} {src}", Probe(t.HOST_UPLINK_V4, port, "tcp", src))
                for name, port in self.running.items()
                for src in (ALLOWED_V4, OTHER_V4)
            ]

    def egress_seen(self) -> set[str]:
        return set(self.canary_log.read_text().split())

    def start(self, b: int, i: int) -> None:
        name = f"churn{b:02d}x{i:02d}"
        allowed = (i + b) % 2 == 0
        port = 20000 + i
        run_container(
            self.lab,
            name,
            {"80/tcp": port},
            labels={"churn": "allowed" if allowed else "denied"},
            command=CHURN_COMMAND,
            environment={"NAME": name},
        )
        with self.books:  # a new target joins the next round; no need to wait for this one
            self.started[name] = time.monotonic()
            self.running[name] = port
            if allowed:
                self.allowed.add(name)

    def batch(self, pool: ThreadPoolExecutor, b: int) -> None:
        """Start a batch, give its allowed containers time to show up, remove the batch."""
        prefix = f"churn{b:02d}"
        began = time.monotonic()
        list(pool.map(lambda i: self.start(b, i), range(BATCH)))
        self.phases["start"] += time.monotonic() - began
        expected = {n for n in self.allowed if n.startswith(prefix)}

        def done() -> bool:
            ok = {o.key.split()[0] for o in self.loop.outcomes if o.ok}
            return expected <= ok and expected <= self.egress_seen()

        began = time.monotonic()
        wait_until(done, EVENT_BOUND, interval=0.1)
        self.phases["wait"] += time.monotonic() - began
        names = [n for n in self.running if n.startswith(prefix)]
        began = time.monotonic()
        with self.loop.lock, self.books:  # no round in flight probes them once this returns
            for name in names:
                del self.running[name]
        list(pool.map(lambda n: remove_container(self.lab, n), names))
        self.phases["remove"] += time.monotonic() - began

    def verify(self) -> list[float]:
        """Asserts the outcome; returns the allowed containers' time to reachable."""
        outcomes = self.loop.outcomes
        assert self.loop.rounds > BATCHES * 3, f"only {self.loop.rounds} probe rounds ran"
        assert len(self.started) == BATCH * BATCHES
        leaks = [
            o
            for o in outcomes
            if o.ok and (o.key.endswith(OTHER_V4) or o.key.split()[0] not in self.allowed)
        ]
        assert not leaks, f"denied connections got through: {leaks[:10]}"
        egress = self.egress_seen()
        assert not egress - self.allowed, f"denied egress got out: {sorted(egress - self.allowed)}"
        latencies, late = [], []
        for name in sorted(self.allowed):
            seen = [o for o in outcomes if o.key == f"{name} {ALLOWED_V4}"]
            oks = [o.at for o in seen if o.ok]
            latency = (min(oks) - self.started[name]) if oks else None
            if latency is None:
                late.append(name)
                continue
            latencies.append(latency)
            flaps = [o for o in seen if o.at > min(oks) and not o.ok]
            assert not flaps, f"{name} flapped after it was first reachable: {flaps}"
        assert not late, f"allowed containers never reachable within {EVENT_BOUND}s: {late}"
        assert self.allowed <= egress, f"no egress from {sorted(self.allowed - egress)}"
        return sorted(latencies)


@pytest.mark.timeout(1200)  # 120 container starts and removals on a shared, busy machine
def test_churn_fail_closed(lab: Lab, cli: LabCli, agents: Agents) -> None:
    """120 containers started and stopped in batches of 20 while probing continuously.

    Each host port (and, as Docker reuses them, each address) alternates between an
    allowed and a denied container from batch to batch. A denied source never connects,
    a denied container never gets egress out, and an allowed container becomes reachable
    and reaches out (waited for up to EVENT_BOUND; the time it took is printed).
    """
    churn = Churn(lab, cli.workdir)
    inet = SubprocessRunner(netns=netns_path(lab.names.inet_ns))
    canary = inet.spawn(
        [sys.executable, "-c", CANARY, CANARY_ADDR, str(CANARY_PORT), str(churn.canary_log)],
        log_path=str(cli.workdir / "canary.out"),
    )
    agent = agents.start(cli.policy(CHURN_POLICY))
    try:
        agent.wait_ready()
        with churn.loop.running(), ThreadPoolExecutor(max_workers=4) as pool:
            for b in range(BATCHES):
                churn.batch(pool, b)
    finally:
        SubprocessRunner().run(["kill", str(canary)], check=False)
    latencies = churn.verify()
    print(
        f"\nchurn: {len(churn.started)} starts, {churn.loop.rounds} probe rounds, "
        f"{len(churn.loop.outcomes)} probes; allowed reachable after p50 "
        f"{latencies[len(latencies) // 2]:.2f}s, max {latencies[-1]:.2f}s "
        f"(probe timeout {churn.loop.timeout}s); seconds spent "
        + ", ".join(f"{k} {v:.0f}" for k, v in churn.phases.items())
    )
    gone = wait_until(lambda: not guard_chains(lab), EVENT_BOUND)
    assert gone is not None, f"guard chains left after churn: {guard_chains(lab)}"
    state = agent.mine()
    assert agent.alive() and state["events"] >= BATCH * BATCHES * 2, state
    assert "error" not in agent.log(), agent.log()


def guard_chains(lab: Lab) -> list[str]:
    return [k for k in our_part(lab) if re.search(r"DOCKWALL-[IE]-[0-9a-f]{12}$", k.split()[1])]


# --- rules follow addresses; address reuse ------------------------------------------

FOLLOW_POLICY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: mover
    ingress: [{from: [192.0.2.100, "2001:db8:100::100"]}]
"""
OLD = ("172.30.0.50", "2001:db8:d0c:1::50")
NEW = ("172.30.0.60", "2001:db8:d0c:1::60")


def test_rules_follow_a_recreated_container_and_leave_the_old_address(
    lab: Lab, cli: LabCli, agents: Agents, prober: Prober
) -> None:
    agents.start(cli.policy(FOLLOW_POLICY)).wait_ready()
    first = run_container(lab, "mover", {"80/tcp": 9301}, network="shop", ipv4=OLD[0], ipv6=OLD[1])
    assert addresses(first) == list(OLD)
    eventually(prober, ALLOWED_V4, "host:9301/tcp")
    eventually(prober, ALLOWED_V6, "host:9301/tcp")
    assert all(rules_naming(lab, a) for a in OLD)

    remove_container(lab, "mover")
    second = run_container(lab, "mover", {"80/tcp": 9301}, network="shop", ipv4=NEW[0], ipv6=NEW[1])
    assert addresses(second) == list(NEW)
    eventually(prober, ALLOWED_V4, "host:9301/tcp")
    eventually(prober, ALLOWED_V6, "host:9301/tcp")
    assert both(prober, "host:9301/tcp", OTHER_V4, OTHER_V6) == (False, False)
    chain = f"DOCKWALL-I-{second['Id'][:12]}"
    for address in NEW:
        assert any(chain in rule for rule in rules_naming(lab, address)), address
    for address in OLD:
        assert rules_naming(lab, address) == [], f"rules left on the old address {address}"
    assert first["Id"][:12] not in json.dumps(our_part(lab)), "the old container's chains stay"


def test_address_reuse_gets_none_of_the_old_rules(
    lab: Lab, cli: LabCli, agents: Agents, prober: Prober
) -> None:
    """A container with no entry lands on an address that had rules: it gets the defaults."""
    agent = agents.start(cli.policy(FOLLOW_POLICY))
    agent.wait_ready()
    run_container(lab, "mover", {"80/tcp": 9301}, network="shop", ipv4=OLD[0], ipv6=OLD[1])
    eventually(prober, ALLOWED_V4, "host:9301/tcp")
    eventually(prober, ALLOWED_V6, "host:9301/tcp")
    remove_container(lab, "mover")
    run_container(lab, "mover", {"80/tcp": 9301}, network="shop", ipv4=NEW[0], ipv6=NEW[1])
    before = agent.mine()["reconciles"]
    squatter = run_container(
        lab, "squatter", {"80/tcp": 9302}, network="shop", ipv4=OLD[0], ipv6=OLD[1]
    )
    assert addresses(squatter) == list(OLD)
    agent.wait_reconciled_after(before)
    eventually(prober, ALLOWED_V4, "host:9301/tcp")  # the agent has caught up with both
    assert both(prober, "host:9302/tcp", ALLOWED_V4, ALLOWED_V6) == (False, False)
    assert both(prober, "host:9302/tcp", OTHER_V4, OTHER_V6) == (False, False)
    for address in OLD:
        assert rules_naming(lab, address) == [], address
    agents.stop_all()
    cli.apply(cli.policy("version: 1\n", "open.yaml"))
    assert both(prober, "host:9302/tcp", ALLOWED_V4, ALLOWED_V6) == (True, True), (
        "without dockwall the squatter answers: the probes above could have succeeded"
    )


# --- drift by hand --------------------------------------------------------------------

DRIFT_POLICY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress: [{port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]
"""
MARKED = ["-m", "comment", "--comment", "dockwall"]


def detach_and_delete(tool: str, parent: str, chain: str) -> list[list[str]]:
    return [
        [tool, "-D", parent, *MARKED, "-j", chain],
        [tool, "-F", chain],
        [tool, "-X", chain],
    ]


TAMPERING = {
    "iptables -F DOCKER-USER": [["iptables", "-F", "DOCKER-USER"]],
    "ip6tables -F DOCKER-USER": [["ip6tables", "-F", "DOCKER-USER"]],
    "iptables: DOCKWALL-FORWARD detached, flushed, deleted": detach_and_delete(
        "iptables", "DOCKER-USER", "DOCKWALL-FORWARD"
    ),
    "ip6tables: DOCKWALL-FORWARD detached, flushed, deleted": detach_and_delete(
        "ip6tables", "DOCKER-USER", "DOCKWALL-FORWARD"
    ),
    "ip6tables: the DOCKER-USER we made, detached, flushed, deleted": detach_and_delete(
        "ip6tables", "FORWARD", "DOCKER-USER"
    ),
    "iptables: DOCKWALL-INPUT detached, flushed, deleted": detach_and_delete(
        "iptables", "INPUT", "DOCKWALL-INPUT"
    ),
    "iptables -F DOCKWALL-DEFAULT-I": [["iptables", "-F", "DOCKWALL-DEFAULT-I"]],
    "ip6tables -F DOCKWALL-DEFAULT-I": [["ip6tables", "-F", "DOCKWALL-DEFAULT-I"]],
}


def test_drift_by_hand_is_restored(lab: Lab, cli: LabCli, agents: Agents, prober: Prober) -> None:
    agent = agents.start(cli.policy(DRIFT_POLICY))
    agent.wait_ready()
    ours = our_part(lab)
    assert any("DOCKWALL-DEFAULT-I" in k for k in ours)
    timings: dict[str, float | None] = {}
    for what, commands in TAMPERING.items():
        repairs: int = agent.mine()["repairs"]
        for argv in commands:
            lab.host.run(argv)
        timings[what] = wait_until(lambda: our_part(lab) == ours, EVENT_BOUND, interval=0.05)
        assert timings[what] is not None, f"{what}: not restored:\n{agent.log()}"

        def counted(before: int = repairs) -> bool:
            return int(agent.mine().get("repairs", 0)) > before

        assert wait_until(counted, EVENT_BOUND) is not None, f"{what}: no repair counted"
    shown = ", ".join(f"{k}: {v:.2f}s" for k, v in timings.items() if v is not None)
    print(f"\ndrift restored after (a figure, not a verdict): {shown}")
    assert both(prober, "host:8080/tcp", ALLOWED_V4, ALLOWED_V6) == (True, True)
    assert both(prober, "host:8080/tcp", OTHER_V4, OTHER_V6) == (False, False)
    assert both(prober, "host:5432/tcp", ALLOWED_V4, ALLOWED_V6) == (False, False)
    assert agent.alive()


NFT_TAMPERING = {
    "nft delete table": [["nft", "delete", "table", "inet", "dockwall"]],
    "nft flush forward": [["nft", "flush", "chain", "inet", "dockwall", "forward"]],
}


def nft_table(lab: Lab) -> str:
    """Our table as nft prints it, counters left out (a restored table starts at zero)."""
    result = lab.host.run(["nft", "list", "table", "inet", "dockwall"], check=False)
    text = result.stdout if result.returncode == 0 else ""
    return re.sub(r"counter packets \d+ bytes \d+", "counter", text)


def test_nftables_drift_is_restored(lab: Lab, cli: LabCli, agents: Agents, prober: Prober) -> None:
    agent = agents.start(cli.policy(DRIFT_POLICY), backend="nftables")
    agent.wait_ready()
    table = nft_table(lab)
    assert "hook forward priority filter - 1" in table
    for what, commands in NFT_TAMPERING.items():
        for argv in commands:
            lab.host.run(argv)
        took = wait_until(lambda: nft_table(lab) == table, EVENT_BOUND, interval=0.05)
        assert took is not None, f"{what}: not restored:\n{agent.log()}"
        print(f"\n{what}: restored after {took:.2f}s (a figure, not a verdict)")
    assert both(prober, "host:8080/tcp", ALLOWED_V4, ALLOWED_V6) == (True, True)
    assert both(prober, "host:8080/tcp", OTHER_V4, OTHER_V6) == (False, False)
    assert agent.mine()["repairs"] >= len(NFT_TAMPERING)


def test_an_interface_the_host_gains_or_loses_is_seen_at_once(
    lab: Lab, cli: LabCli, agents: Agents
) -> None:
    """The agent reads the links only when rtnetlink says they changed (LinkWatch):
    a link added while it runs is in its host set within the bound, and gone again."""
    agent = agents.start(cli.policy(DRIFT_POLICY), backend="nftables")
    agent.wait_ready()
    assert '"dwt0"' not in nft_table(lab)
    lab.host.run(["ip", "link", "add", "dwt0", "type", "veth", "peer", "name", "dwt1"])
    try:
        seen = wait_until(lambda: '"dwt0"' in nft_table(lab), EVENT_BOUND, interval=0.1)
        assert seen is not None, f"a new host interface was not picked up:\n{agent.log()}"
    finally:
        lab.host.run(["ip", "link", "del", "dwt0"], check=False)
    gone = wait_until(lambda: '"dwt0"' not in nft_table(lab), EVENT_BOUND, interval=0.1)
    assert gone is not None, f"a removed host interface stayed:\n{agent.log()}"


# --- agent killed, restarted ----------------------------------------------------------

KILL_POLICY = """\
version: 1
defaults: {ingress: deny, egress: deny}
containers:
  - name: web
    ingress: [{port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]
  - label: role=late
    ingress: [{from: [192.0.2.100, "2001:db8:100::100"]}]
"""


def test_agent_kill9_rules_stay_and_restart_has_no_window(
    lab: Lab, cli: LabCli, agents: Agents, prober: Prober
) -> None:
    policy = cli.policy(KILL_POLICY)
    first = agents.start(policy)
    first.wait_ready()
    assert both(prober, "host:8080/tcp", ALLOWED_V4, ALLOWED_V6) == (True, True)
    rules = our_part(lab)

    first.kill9()
    assert not first.alive()
    assert our_part(lab) == rules, "kill -9 must leave the rules in force"
    assert both(prober, "host:8080/tcp", ALLOWED_V4, ALLOWED_V6) == (True, True)
    assert both(prober, "host:8080/tcp", OTHER_V4, OTHER_V6) == (False, False)
    assert not prober.probe("container:web", "203.0.113.10:443/tcp"), "egress default deny"

    # Started while no agent runs: the bridge-wide defaults hold it (fail-closed).
    run_container(lab, "late", {"80/tcp": 9501}, labels={"role": "late"})
    assert both(prober, "host:9501/tcp", ALLOWED_V4, ALLOWED_V6) == (False, False)
    assert not prober.probe("container:late", "203.0.113.10:443/tcp")

    watched = {
        "web allowed": Probe(t.HOST_UPLINK_V4, 8080, "tcp", ALLOWED_V4),
        "web allowed v6": Probe(t.HOST_UPLINK_V6, 8080, "tcp", ALLOWED_V6),
        "web other": Probe(t.HOST_UPLINK_V4, 8080, "tcp", OTHER_V4),
        "web other v6": Probe(t.HOST_UPLINK_V6, 8080, "tcp", OTHER_V6),
        "late allowed": Probe(t.HOST_UPLINK_V4, 9501, "tcp", ALLOWED_V4),
        "late other": Probe(t.HOST_UPLINK_V4, 9501, "tcp", OTHER_V4),
    }
    loop = ProbeLoop(lab, lambda: list(watched.items()), timeout=1.0, max_seconds=300)
    with loop.running():
        wait_until(lambda: loop.rounds >= 3, EVENT_BOUND)
        second = agents.start(policy)
        second.wait_ready()
        late_ok = wait_until(
            lambda: any(o.ok and o.key == "late allowed" for o in loop.outcomes), EVENT_BOUND
        )
        rounds = loop.rounds
        wait_until(lambda: loop.rounds >= rounds + 3, EVENT_BOUND)
    assert late_ok is not None, "the container started while the agent was down never opened"
    by_key: dict[str, list[bool]] = {}
    for outcome in loop.outcomes:
        by_key.setdefault(outcome.key, []).append(outcome.ok)
    assert all(by_key["web allowed"]) and all(by_key["web allowed v6"]), by_key
    for key in ("web other", "web other v6", "late other"):
        assert not any(by_key[key]), f"{key} got through during the restart"
    assert by_key["late allowed"][:3] == [False] * 3, "fail-closed before the restart"
    assert second.mine()["pid"] == second.pid
    assert cli.plan_exit(policy) == 0, "after the restart the firewall is in sync"


# --- dockerd restart ------------------------------------------------------------------


def test_dockerd_restart_rules_hold_and_agent_reconnects(
    lab: Lab, cli: LabCli, agents: Agents, prober: Prober
) -> None:
    agent = agents.start(cli.policy(KILL_POLICY))
    before = agent.wait_ready()
    rules = our_chains(lab)
    restarted_at = time.time()
    lab.restart_dockerd()

    def reconnected() -> bool:
        state = agent.mine()
        return bool(state.get("connected")) and state.get("reconciles", 0) > before["reconciles"]

    took = wait_until(reconnected, 2 * EVENT_BOUND)
    assert took is not None, f"agent did not reconnect:\n{agent.log()}"
    assert agent.alive()
    assert "lost Docker" in agent.log()
    print(f"\nagent reconnected {time.time() - restarted_at:.1f}s after the restart began")
    assert our_chains(lab) == rules, "Docker's restart must keep our rules"
    assert wait_until(lambda: not hooks_not_first(lab), EVENT_BOUND) is not None, hooks_not_first(
        lab
    )
    assert both(prober, "host:8080/tcp", ALLOWED_V4, ALLOWED_V6) == (True, True)
    assert both(prober, "host:8080/tcp", OTHER_V4, OTHER_V6) == (False, False)
    assert both(prober, "host:5432/tcp", ALLOWED_V4, ALLOWED_V6) == (False, False)
    # Events flow again: a container started now gets its rules.
    run_container(lab, "late", {"80/tcp": 9501}, labels={"role": "late"})
    eventually(prober, ALLOWED_V4, "host:9501/tcp")
    eventually(prober, ALLOWED_V6, "host:9501/tcp")
    assert both(prober, "host:9501/tcp", OTHER_V4, OTHER_V6) == (False, False)


# --- labels ---------------------------------------------------------------------------

LABELLED_IMAGE = "dwlab/labelled"


def test_image_label_ignored_container_label_honoured(
    lab: Lab, cli: LabCli, agents: Agents, prober: Prober
) -> None:
    with lab.client() as client:
        client.api.import_image_from_data(
            rootfs_tar(),
            repository=LABELLED_IMAGE,
            tag="latest",
            changes=['LABEL dockwall.ingress="[{port: 9401/tcp, from: [any]}]"'],
        )
        labels = client.images.get(f"{LABELLED_IMAGE}:latest").labels
    assert labels == {"dockwall.ingress": "[{port: 9401/tcp, from: [any]}]"}
    agents.start(cli.policy("version: 1\ndefaults: {ingress: deny}\n")).wait_ready()
    image = f"{LABELLED_IMAGE}:latest"
    from_image = run_container(lab, "fromimage", {"80/tcp": 9401}, image=image)
    run_container(
        lab,
        "ownlabel",
        {"80/tcp": 9402},
        labels={"dockwall.ingress": "[{port: 9402/tcp, from: [any]}]"},
    )
    run_container(
        lab,
        "overrides",
        {"80/tcp": 9403},
        image=image,
        labels={"dockwall.ingress": "[{port: 9403/tcp, from: [any]}]"},
    )
    for port in (9402, 9403):
        eventually(prober, OTHER_V4, f"host:{port}/tcp")
        eventually(prober, OTHER_V6, f"host:{port}/tcp")
    assert both(prober, "host:9401/tcp", OTHER_V4, OTHER_V6) == (False, False)
    assert all(rules_naming(lab, a) == [] for a in addresses(from_image))
    agents.stop_all()
    cli.apply(cli.policy("version: 1\n", "open.yaml"))  # not `reset`: see the report
    assert both(prober, "host:9401/tcp", OTHER_V4, OTHER_V6) == (True, True), (
        "without dockwall the image's container answers: the probes above could succeed"
    )


# --- container to container -----------------------------------------------------------

PEERS_POLICY = """\
version: 1
defaults: {peers: deny}
containers:
  - name: api
    ingress: [{port: 80/tcp, from_containers: [client]}]
"""


def test_from_containers_with_peers_denied(
    lab: Lab, cli: LabCli, agents: Agents, prober: Prober
) -> None:
    policy = cli.policy(PEERS_POLICY)
    agent = agents.start(policy)
    agent.wait_ready()
    for name in ("api", "client", "stranger"):
        run_container(lab, name, network="shop")
    ok = wait_until(
        lambda: prober.probe("container:client", "container:api:80/tcp"), EVENT_BOUND, 0.1
    )
    assert ok is not None, agent.log()
    assert prober.probe("container:client", "container:api:80/tcp", family=6)
    for src, dst in (("stranger", "api"), ("api", "client"), ("stranger", "client")):
        for family in (4, 6):
            assert not prober.probe(f"container:{src}", f"container:{dst}:80/tcp", family), (
                f"{src} -> {dst} over IPv{family} with peers denied"
            )
    # The same file with peers allowed: the agent reloads it and the stranger gets in.
    policy.write_text(PEERS_POLICY.replace("peers: deny", "peers: allow"))
    eventually_peer = wait_until(
        lambda: prober.probe("container:stranger", "container:api:80/tcp"), EVENT_BOUND, 0.1
    )
    assert eventually_peer is not None, agent.log()


# --- long-lived connections -------------------------------------------------------------

WS_A = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: wsapp
    ingress: [{port: 9765/tcp, from: [any]}]
"""
WS_B = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: wsapp
    ingress:
      - {port: 9765/tcp, from: [198.51.100.0/24, 192.0.2.0/24, "2001:db8::/32"]}
      - {port: 9766/tcp, from: [203.0.113.0/24]}
"""
WS_TIGHT = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: wsapp
    ingress: [{port: 9765/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]
"""
REAPPLIES = 40  # alternating two policies: enough to show a held socket outlives every apply


class WsClient:
    def __init__(self, lab: Lab, src: str, host: str) -> None:
        url = f"ws://{host}:9765/"
        runner = SubprocessRunner(netns=netns_path(lab.names.inet_ns))
        self.proc = runner.interactive(
            [sys.executable, WS_PEER, "client", "--url", url, "--src", src]
        )
        assert self.proc.stdout is not None
        self.greeting = self.proc.stdout.readline().strip()

    def exchange(self, text: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.mark.timeout(900)  # REAPPLIES CLI applies and two agent restarts on a shared, busy machine
def test_websocket_survives_reapplies_agent_restart_and_tightening(
    lab: Lab, cli: LabCli, agents: Agents, prober: Prober
) -> None:
    policy = cli.policy(WS_A)
    agent = agents.start(policy)
    agent.wait_ready()
    attrs = run_container(lab, "wsapp", {"8765/tcp": 9765}, command=["sleep", "2147483647"])
    server = SubprocessRunner(netns=f"/proc/{attrs['State']['Pid']}/ns/net").spawn(
        [sys.executable, WS_PEER, "serve", "--port", "8765"],
        log_path=str(cli.workdir / "ws-server.log"),
    )
    clients: list[WsClient] = []
    try:
        eventually(prober, OTHER_V4, "host:9765/tcp")
        v4 = WsClient(lab, OTHER_V4, t.HOST_UPLINK_V4)
        clients.append(v4)
        v6 = WsClient(lab, OTHER_V6, f"[{t.HOST_UPLINK_V6}]")
        clients.append(v6)
        assert v4.greeting.startswith("connected"), v4.greeting
        assert v6.greeting.startswith("connected"), v6.greeting
        seen: dict[str, dict[str, list[str]]] = {}
        failures = []
        for i in range(REAPPLIES):
            text = WS_B if i % 2 == 0 else WS_A
            policy.write_text(text)
            cli.apply(policy)
            live = our_part(lab)
            if text in seen:
                assert live == seen[text], f"apply {i}: not the ruleset of the same policy"
            seen[text] = live
            if i == REAPPLIES // 2:
                agent.stop()
                agent = agents.start(policy)
                agent.wait_ready()
            for client in (v4, v6):
                answer = client.exchange(f"message {i}")
                if answer != "ok":
                    failures.append((i, client.greeting, answer))
        assert seen[WS_A] != seen[WS_B], "the two policies must really differ in rules"
        assert not failures, failures

        policy.write_text(WS_TIGHT)
        cli.apply(policy)
        assert v4.exchange("after tightening") == "ok"
        assert v6.exchange("after tightening") == "ok"
        for src, host in ((OTHER_V4, t.HOST_UPLINK_V4), (OTHER_V6, f"[{t.HOST_UPLINK_V6}]")):
            late = WsClient(lab, src, host)
            clients.append(late)
            assert late.greeting.startswith("fail connect"), f"{src}: {late.greeting}"
        allowed = WsClient(lab, ALLOWED_V4, t.HOST_UPLINK_V4)
        clients.append(allowed)
        assert allowed.greeting.startswith("connected"), allowed.greeting
        assert allowed.exchange("hello") == "ok"
        time.sleep(1.5)  # a drift check or two of the agent on the tightened policy
        assert v4.exchange("still") == "ok" and v6.exchange("still") == "ok"
        assert agent.alive() and agent.mine()["reconciles"] >= 1
    finally:
        for client in clients:
            client.close()
        SubprocessRunner().run(["kill", str(server)], check=False)


# --- networks dockwall has not seen ---------------------------------------------------


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_new_network_while_agent_down_is_held_by_defaults(
    lab: Lab, cli: LabCli, agents: Agents, prober: Prober, backend: str
) -> None:
    agent = agents.start(cli.policy("version: 1\ndefaults: {ingress: deny}\n"), backend=backend)
    agent.wait_ready()
    agent.stop()
    with lab.client() as client:
        network = client.networks.create("latenet", driver="bridge")
    try:
        run_container(lab, "onlatenet", {"80/tcp": 9701}, network="latenet")
        run_container(lab, "neighbour", {}, network="latenet")
        assert not prober.probe(OTHER_V4, "host:9701/tcp"), "an unseen bridge is held too"
        assert prober.probe("container:neighbour", "container:onlatenet:80/tcp"), (
            "traffic within the unseen bridge is left alone"
        )
    finally:
        remove_container(lab, "onlatenet")
        remove_container(lab, "neighbour")
        network.remove()
