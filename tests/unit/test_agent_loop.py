"""The agent's loop with a scripted Docker, a recording firewall and a fake clock:
debounce, the burst cap, drift repair and retry, reconnect with backoff, policy
reload, bad labels, and the services and hooks it hosts. No Docker, no root."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockwall.agent.events import Disconnected, Event, Item
from dockwall.agent.loop import Agent, AgentConfig
from dockwall.agent.services import Enforced, Hosting
from dockwall.compile.ir import Ruleset
from dockwall.engine import Selected
from dockwall.errors import DockwallError
from dockwall.model.state import Attachment, Container

from .agent_fakes import (
    Action,
    FakeClock,
    FakeDocker,
    FakeFirewall,
    FakeNftables,
    FakeSession,
    Host,
)
from .state_samples import DOCKER0

POLICY = """\
version: 1
defaults: {ingress: deny}
containers:
  - label: app=web
    ingress: [{from: [192.0.2.1], port: 80/tcp}]
"""
CONFIG = {"debounce": 0.005, "max_delay": 0.2, "drift_interval": 1.0, "reconnect_max": 1.0}
T0 = 1000.0  # the fake clock's start


def box(n: int, labels: dict[str, str] | None = None) -> Container:
    address = ipaddress.ip_address(f"172.17.{n // 250}.{n % 250 + 2}")
    return Container(
        id=f"{n:04d}" * 16,
        name=f"c{n}",
        labels={"app": "web"} if labels is None else labels,
        attachments=(Attachment("bridge", "docker0", (address,)),),
    )


def started(n: int) -> Event:
    return Event("container", "start", box(n).id)


def names(ruleset: Ruleset) -> set[str]:
    return {g.name for g in ruleset.guards}


@dataclass
class Rig:
    tmp: Path
    clock: FakeClock = field(default_factory=FakeClock)
    stop: threading.Event = field(default_factory=threading.Event)
    logged: list[str] = field(default_factory=list)
    host: Host = field(default_factory=lambda: Host((DOCKER0,), {}))

    def __post_init__(self) -> None:
        self.firewall = FakeFirewall(self.clock)
        self.policy = self.tmp / "policy.yaml"
        self.policy.write_text(POLICY)

    def session(
        self, script: list[tuple[float, Item | Action]], fail_state: Exception | None = None
    ) -> FakeSession:
        return FakeSession(self.clock, self.host, script, fail_state)

    def agent(
        self, *sessions: FakeSession | DockwallError, until: float, **kwargs: object
    ) -> Agent:
        self.docker = FakeDocker(self.clock, self.stop, list(sessions), T0 + until)
        config = AgentConfig(self.policy, **CONFIG)  # type: ignore[arg-type]
        return Agent(
            config,
            self.firewall,
            self.logged.append,
            connect=self.docker,
            clock=self.clock,
            **kwargs,  # type: ignore[arg-type]
        )

    def run(self, agent: Agent) -> Agent:
        """On a thread, bounded: a loop that never ends fails the test instead of hanging."""
        failure: list[BaseException] = []

        def body() -> None:
            try:
                agent.run(self.stop)
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        thread.join(timeout=30)
        self.stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the agent's loop did not end"
        assert not failure, failure
        return agent

    def applies(self) -> list[tuple[float, set[str]]]:
        return [(round(at - T0, 4), names(r)) for at, r in self.firewall.applied]


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    monkeypatch.setenv("DOCKWALL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DOCKWALL_STATE_DIR", str(tmp_path / "state"))
    yield Rig(tmp_path)


def test_a_burst_is_debounced_into_one_apply(rig: Rig) -> None:
    script: list[tuple[float, Item | Action]] = []
    for n, at in enumerate((0.100, 0.102, 0.104)):
        script += [(T0 + at, rig.host.run(box(n))), (T0 + at, started(n))]
    agent = rig.run(rig.agent(rig.session(script), until=0.5))
    assert rig.applies() == [(0.0, set()), (0.109, {"c0", "c1", "c2"})]
    assert agent.stats.events == 3
    assert agent.stats.reconciles == 2


def test_a_steady_stream_is_applied_at_the_burst_cap(rig: Rig) -> None:
    """One event every 3 ms (debounce 5 ms) for 0.9 s: applied every max_delay, not once
    at the end, and every container within max_delay of its event."""
    script: list[tuple[float, Item | Action]] = []
    events = 300
    for n in range(events):
        at = T0 + 0.1 + n * 0.003
        script += [(at, rig.host.run(box(n))), (at, started(n))]
    rig.run(rig.agent(rig.session(script), until=1.5))
    bursts = rig.applies()[1:]
    assert 4 <= len(bursts) <= 6, bursts
    seen: set[str] = set()
    for at, present in bursts:
        new = present - seen
        assert new, f"an apply at {at} added nobody"
        first = min(int(name[1:]) for name in new)
        assert at - (0.1 + first * 0.003) <= 0.2 + 0.003 + 1e-6
        seen |= present
    assert seen == {f"c{n}" for n in range(events)}


def test_drift_is_repaired_at_the_next_check_and_an_idle_check_writes_nothing(rig: Rig) -> None:
    def flush() -> None:
        rig.firewall.live = None

    agent = rig.run(rig.agent(rig.session([(T0 + 2.5, flush)]), until=4.2))
    assert rig.applies() == [(0.0, set()), (3.0, set())]
    assert agent.stats.drift_checks == 4  # at 1, 2, 3 and 4 s
    assert agent.stats.repairs == 1
    assert any("drift repaired" in line for line in rig.logged)


def test_a_failed_reconcile_keeps_trying_at_each_drift_check(rig: Rig) -> None:
    rig.host.containers[box(0).id] = box(0)
    rig.firewall.fail = DockwallError("nft: table busy")

    def recover() -> None:
        rig.firewall.fail = None

    agent = rig.run(rig.agent(rig.session([(T0 + 2.5, recover)]), until=4.2))
    assert rig.applies() == [(3.0, {"c0"})]
    errors = [line for line in rig.logged if "previous rules stay in force" in line]
    assert len(errors) == 3  # the resync, then the retries at 1 and 2 s
    assert agent.stats.last_error is None
    assert agent.stats.drift_checks == 1  # at 4 s; the retries were reconciles


def test_reconnect_backs_off_while_docker_is_down_and_resyncs_each_time(rig: Rig) -> None:
    refused = DockwallError("cannot reach Docker")
    lost = rig.session([(T0 + 3.6, Disconnected("event stream ended"))])
    broken = rig.session([], fail_state=ConnectionError("reset mid-resync"))
    rig.host.containers[box(0).id] = box(0)
    last = rig.session([(T0 + 4.0, rig.host.run(box(1))), (T0 + 4.0, started(1))])
    agent = rig.agent(refused, refused, refused, refused, lost, broken, refused, last, until=5.0)
    rig.run(agent)
    # 0.2 + 0.4 + 0.8 + 1.0 (capped); after a connection it starts from 0.2 again
    assert rig.clock.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.0, 0.2, 0.2])
    assert [round(t - T0, 3) for t in rig.docker.opened] == [0, 0.2, 0.6, 1.4, 2.4, 3.6, 3.8, 4.0]
    assert lost.closed and broken.closed and last.closed
    assert rig.firewall.selections == 2  # a backend chosen at each resync
    assert rig.applies() == [(2.4, {"c0"}), (4.0, {"c0"}), (4.005, {"c0", "c1"})]
    assert not agent.stats.connected
    assert sum("reconnecting with a full resync" in line for line in rig.logged) == 2


def test_a_changed_policy_file_is_applied_at_the_next_drift_check(rig: Rig) -> None:
    rig.host.containers[box(0).id] = box(0)

    def rewrite() -> None:
        rig.policy.write_text(POLICY.replace("app=web", "app=none") + "# now nobody\n")

    agent = rig.run(rig.agent(rig.session([(T0 + 1.5, rewrite)]), until=2.5))
    assert rig.applies() == [(0.0, {"c0"}), (2.0, set())]
    assert any("policy reloaded" in line for line in rig.logged)
    assert agent.stats.reconciles == 2


def test_a_bad_label_holds_its_container_warns_once_and_never_blocks_the_others(
    rig: Rig,
) -> None:
    bad = box(1, {"dockwall.ingress": "[{port: not-a-port}]"})
    rig.host.containers |= {box(0).id: box(0), bad.id: bad}
    script: list[tuple[float, Item | Action]] = [
        (T0 + 0.3, rig.host.run(box(2))),
        (T0 + 0.3, started(2)),
        (T0 + 0.6, rig.host.relabel(bad.id, {"dockwall.ingress": "[{port: 8080/tcp}]"})),
        (T0 + 0.6, Event("container", "update", bad.id)),
    ]
    agent = rig.run(rig.agent(rig.session(script), until=0.9))
    applies = rig.applies()
    assert [names for _, names in applies[:2]] == [{"c0"}, {"c0", "c2"}]
    assert applies[2][1] == {"c0", "c1", "c2"}
    warnings = [line for line in rig.logged if "dockwall.ingress" in line]
    assert len(warnings) == 1 and "c1" in warnings[0], rig.logged
    assert agent.stats.last_error is None


def test_services_run_with_the_agent_and_hooks_hear_every_apply(rig: Rig) -> None:
    calls: list[str] = []
    heard: list[Enforced] = []

    class Recorder:
        name = "recorder"

        def start(self, hosting: Hosting) -> None:
            calls.append(f"start connected={rig.docker.opened != []}")
            assert hosting.stop is rig.stop

        def stop(self) -> None:
            calls.append("stop")

    def broken_hook(_: Enforced) -> None:
        raise RuntimeError("bug in an extension")

    rig.host.containers[box(0).id] = box(0)
    script: list[tuple[float, Item | Action]] = [
        (T0 + 0.3, rig.host.remove(box(0).id)),
        (T0 + 0.3, Event("container", "destroy", box(0).id)),
    ]
    agent = rig.agent(
        rig.session(script),
        until=0.6,
        services=[Recorder()],
        after_apply=[broken_hook, heard.append],
    )
    rig.run(agent)
    assert calls == ["start connected=False", "stop"]
    assert [names(e.compiled.ruleset) for e in heard] == [{"c0"}, set()]
    assert [e.compiled.ruleset for e in heard] == [r for _, r in rig.firewall.applied]
    assert heard[0].backend == "fake" and heard[0].reason == "resync"
    assert [c.name for c in heard[0].state.containers] == ["c0"]
    assert sum("bug in an extension" in line for line in rig.logged) == 2
    assert agent.stats.reconciles == 2


def test_a_service_that_cannot_start_stops_those_started_and_the_agent(rig: Rig) -> None:
    calls: list[str] = []

    @dataclass
    class Named:
        name: str
        fails: bool = False

        def start(self, hosting: Hosting) -> None:
            if self.fails:
                raise DockwallError(f"{self.name}: cannot bind 127.0.0.1:9100")
            calls.append(f"start {self.name}")

        def stop(self) -> None:
            calls.append(f"stop {self.name}")

    agent = rig.agent(until=1.0, services=[Named("dns"), Named("web", fails=True)])
    with pytest.raises(DockwallError, match="cannot bind"):
        agent.run(rig.stop)
    assert calls == ["start dns", "stop dns"]
    assert rig.docker.opened == []


def gated(rig: Rig) -> None:
    rig.firewall.selected = Selected(FakeNftables(), "test", ())


def test_the_drift_check_lists_only_when_someone_else_committed(rig: Rig) -> None:
    """Generation gate (agent/driftgate.py): the forwarder's own commits (2.5 s) leave the
    checks at 3 and 4 s to the stamp; a flush by someone else (4.5 s) is listed at 5 s
    and repaired; the check after a repair lists again, then the gate holds."""
    gated(rig)

    def learned() -> None:
        rig.firewall.generation += 2
        rig.firewall.own += 2

    def flush() -> None:
        rig.firewall.live = None
        rig.firewall.generation += 1

    script: list[tuple[float, Item | Action]] = [(T0 + 2.5, learned), (T0 + 4.5, flush)]
    agent = rig.agent(rig.session(script), until=8.2, generation=rig.firewall.stamp)
    rig.run(agent)
    assert [round(at - T0, 3) for at in rig.firewall.plans] == [0.0, 1.0, 5.0, 6.0]
    assert rig.applies() == [(0.0, set()), (5.0, set())]
    assert agent.stats.drift_checks == 8
    assert agent.stats.repairs == 1


def test_a_gated_drift_check_still_lists_at_the_backstop_and_when_unreadable(
    rig: Rig,
) -> None:
    gated(rig)
    stamps: list[tuple[int, int] | None] = []

    def stamp() -> tuple[int, int]:
        if rig.clock.t - T0 > 40:
            raise DockwallError("netlink: query: no reply from the kernel")
        found = rig.firewall.stamp()
        stamps.append(found)
        return found

    agent = rig.agent(rig.session([]), until=42.2, generation=stamp)
    rig.run(agent)
    listed = [round(at - T0, 3) for at in rig.firewall.plans]
    assert listed == [0.0, 1.0, 31.0, 41.0, 42.0]
    assert agent.stats.drift_checks == 42


def test_without_a_stamp_or_on_another_backend_every_check_lists(rig: Rig) -> None:
    agent = rig.agent(rig.session([]), until=3.2, generation=rig.firewall.stamp)
    rig.run(agent)
    assert [round(at - T0, 3) for at in rig.firewall.plans] == [0.0, 1.0, 2.0, 3.0]
    assert agent.stats.drift_checks == 3


def test_with_a_link_watch_the_interfaces_are_read_only_after_a_change_or_at_the_backstop(
    rig: Rig,
) -> None:
    changes = {3.0, 5.0}
    reads: list[float] = []

    def links() -> bool:
        now = round(rig.clock.t - T0, 3)
        reads.append(now)
        return now in changes

    calls_at: list[float] = []
    respond = rig.firewall.runner.respond

    def recording(argv: list[str], text: str | None) -> tuple[int, str]:
        if argv[:3] == ["ip", "-j", "link"]:
            calls_at.append(round(rig.clock.t - T0, 3))
        return respond(argv, text)

    rig.firewall.runner.respond = recording
    rig.run(rig.agent(rig.session([]), until=36.2, links=links))
    at_checks = [at for at in calls_at if at >= 1.0]
    assert at_checks == [1.0, 3.0, 5.0, 35.0], calls_at  # the first, two changes, backstop
    assert reads[:4] == [2.0, 3.0, 4.0, 5.0], "the watch is asked at every other check"


def test_without_a_link_watch_every_drift_check_reads_the_interfaces(rig: Rig) -> None:
    rig.run(rig.agent(rig.session([]), until=3.2))
    assert len([c for c in rig.firewall.runner.calls if c[0][:3] == ["ip", "-j", "link"]]) >= 3
