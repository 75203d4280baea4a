"""State, signals and the firewall lock (issue 10, items 6 and 7) on a real Docker host.

Reproductions from the issue: with the state dir unusable `apply` printed a traceback
and exit 1 while the new rules were in force; a SIGKILL late in a 10,000-entry apply
left `apply --boot` restoring the old policy; SIGTERM during a large apply leaked
ipsets; two simultaneous applies duplicated hooks, orphaned chains and leaked sets; an
apply while the agent ran another policy was silently undone.

Kills are aimed at exact moments of a transaction: stand-ins for `ipset` and
`iptables-restore` on the apply's PATH run the real programs and mark when a load
starts and ends (see Shims).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from dockwall.locking import firewall_lock
from dockwall.runner import SubprocessRunner

from .agent_helpers import (
    ALLOWED_V4,
    OTHER_V4,
    Agents,
    LabCli,
    host_runner,
    our_part,
    save,
    wait_until,
)

pytestmark = pytest.mark.lab

SMALL = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress: [{port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]
"""
GENEROUS = 120.0
LARGE = 2_000  # addresses in one list: a large ipset and a large transaction


def many_sources(count: int, second_octet: int = 0) -> str:
    """Every other address, so the compiler cannot merge them into a few prefixes."""
    return ", ".join(f"10.{second_octet}.{2 * i // 256}.{2 * i % 256}" for i in range(count))


def policy_with(count: int, second_octet: int = 0) -> str:
    """web reachable from 192.0.2.100 and `count` other IPv4 addresses (an ipset)."""
    return (
        "version: 1\ndefaults: {ingress: deny}\ncontainers:\n  - name: web\n"
        f"    ingress: [{{port: 8080/tcp, from: [192.0.2.100, {many_sources(count, second_octet)}]}}]\n"
    )


def start(lab: Lab, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`dockwall ARGS` on the lab host, in a process group of its own (nsenter execs
    python, so the pid is dockwall's)."""
    runner = host_runner(lab)
    argv = runner.argv_for([sys.executable, "-m", "dockwall", *args])
    return subprocess.Popen(
        argv,
        env={**os.environ, **runner.env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


SHIM = """\
import os, subprocess, sys, time
name = os.path.basename(sys.argv[0])
loads = "restore" in sys.argv[1:] or name.endswith("-restore")
data = sys.stdin.buffer.read() if loads else None
if loads and name == "ipset":  # `ipset restore` of `save NAME` lines is a read
    words = {line.split()[0] for line in data.splitlines() if line.split()}
    loads = bool(words - {b"save", b"list"})
marker = os.path.join(os.environ["SHIM_DIR"], f"{name}.{os.getpid()}")
if loads:
    open(marker + ".started", "w").close()
    time.sleep(float(os.environ.get("SHIM_BEFORE", "0")))
code = subprocess.run([REAL, *sys.argv[1:]], input=data).returncode
if loads:
    open(marker + ".done", "w").close()
    time.sleep(float(os.environ.get("SHIM_AFTER", "0")))
sys.exit(code)
"""
LOADERS = [
    f"{tool}-{kind}-restore" for tool in ("iptables", "ip6tables") for kind in ("nft", "legacy")
]


class Shims:
    """Stand-ins for `ipset` and the `*-restore` programs, first on the apply's PATH: they
    run the real program and leave a marker when a load starts and ends, pausing before
    and after, so a test can hit an exact moment of a transaction from outside. An
    `ipset restore` of `save` lines only (how the backend reads members) is a read."""

    def __init__(self, directory: Path, before: float = 0.0, after: float = 0.0) -> None:
        self.directory = directory
        directory.mkdir()
        for name in ["ipset", *LOADERS]:
            real = shutil.which(name)
            if real is None:
                continue
            shim = directory / name
            shim.write_text(f"#!{sys.executable}\nREAL = {real!r}\n{SHIM}")
            shim.chmod(0o755)
        self.env = {
            "PATH": f"{directory}:{os.environ.get('PATH', '')}",
            "SHIM_DIR": str(directory),
            "SHIM_BEFORE": str(before),
            "SHIM_AFTER": str(after),
        }

    def markers(self, prefix: str, state: str) -> int:
        return len(list(self.directory.glob(f"{prefix}*.{state}")))

    def wait(self, proc: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + GENEROUS
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                _, err = proc.communicate(timeout=GENEROUS)
                pytest.fail(f"the apply never reached {what} (exit {proc.returncode}): {err}")
            time.sleep(0.01)

    def wait_set_load_started(self, proc: subprocess.Popen[str]) -> None:
        self.wait(proc, lambda: self.markers("ipset", "started") > 0, "its set load")

    def wait_tables_loaded(self, proc: subprocess.Popen[str]) -> None:
        """Every iptables-restore that started has finished: the kernel has the rules."""

        def loaded() -> bool:
            started = self.markers("ip", "started") - self.markers("ipset", "started")
            done = self.markers("ip", "done") - self.markers("ipset", "done")
            return started > 0 and done == started

        self.wait(proc, loaded, "the end of its table loads")


def our_sets(lab: Lab) -> set[str]:
    names = lab.host.run(["ipset", "list", "-n"]).stdout.split()
    return {n for n in names if n.startswith("dockwall-")}


def referenced_sets(lab: Lab) -> set[str]:
    text = save(lab, "iptables-save") + save(lab, "ip6tables-save")
    words = text.split()
    return {words[i + 1] for i, w in enumerate(words[:-1]) if w == "--match-set"}


def boot(cli: LabCli) -> str:
    return cli.run("apply", "--boot", timeout=GENEROUS).stdout


def assert_live_and_recorded(cli: LabCli, policy: Path) -> None:
    """`policy` is in force entirely (so the other one is not), no set is left unused,
    and the state is what is live: booting again changes nothing."""
    assert cli.plan_exit(policy) == 0, f"{policy.name} is not entirely in force"
    assert our_sets(cli.lab) == referenced_sets(cli.lab), "no leaked set"
    again = boot(cli)
    assert ": 0 added" in again, again


def test_state_dir_a_regular_file_is_one_error_with_exit_3_and_rules_in_force(
    cli: LabCli, tmp_path: Path, prober: Prober
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    path = cli.policy(SMALL)
    runner = SubprocessRunner(
        netns=cli.lab.host.netns,
        env={**host_runner(cli.lab).env, "DOCKWALL_STATE_DIR": str(blocker)},
    )
    argv = [sys.executable, "-m", "dockwall", "apply", "--backend", "iptables", "-f", str(path)]
    result = runner.run(argv, check=False, timeout=GENEROUS)
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip() == (
        f"error: rules are in force but the state could not be saved to "
        f"{blocker}/pending-apply.json: {blocker} is not a directory"
    )
    assert cli.plan_exit(path) == 0, "the rules are in force"
    assert prober.probe(ALLOWED_V4, "host:8080/tcp")
    assert not prober.probe(OTHER_V4, "host:8080/tcp")


@pytest.mark.parametrize("moment", ["set-load", "tables-loaded"])
def test_sigkill_late_in_a_large_apply_then_boot_restores_what_is_live(
    cli: LabCli, tmp_path: Path, moment: str
) -> None:
    """SIGKILL to the apply and all it runs: while a set is being loaded (the old rules
    are live, perhaps with a half-made set), or once the kernel has the new rules but
    before the state is committed (the new rules are live, the old set still there)."""
    old = cli.policy(policy_with(20), "old.yaml")
    new = cli.policy(policy_with(LARGE, 1), "new.yaml")
    cli.apply(old)
    shims = Shims(tmp_path / "shims", before=0.5, after=5.0)
    proc = start(cli.lab, "apply", "--backend", "iptables", "-f", str(new), env=shims.env)
    if moment == "set-load":
        shims.wait_set_load_started(proc)
    else:
        shims.wait_tables_loaded(proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=GENEROUS)
    booted = boot(cli)
    print(f"\nSIGKILL at {moment}: boot said: {booted.strip()}")
    assert_live_and_recorded(cli, old if moment == "set-load" else new)


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, True)],
    ids=["sigterm", "sigterm-to-group", "sigint-to-group"],
)
def test_a_signal_during_a_large_apply_leaks_nothing(
    cli: LabCli, tmp_path: Path, signum: int, group: bool
) -> None:
    """The group variants are systemd stopping a unit and Ctrl-C: the signal also
    reaches `ipset restore` and `iptables-restore`, which must not die half-way."""
    old = cli.policy(policy_with(20), "old.yaml")
    new = cli.policy(policy_with(LARGE, 2), "new.yaml")
    cli.apply(old)
    shims = Shims(tmp_path / "shims", before=1.0)
    proc = start(cli.lab, "apply", "--backend", "iptables", "-f", str(new), env=shims.env)
    shims.wait_set_load_started(proc)
    if group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=GENEROUS)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode != 0, "the signal still ends the command, once the load is done"
    assert shims.markers("ip", "started") == shims.markers("ip", "done"), "no loader cut"
    assert_live_and_recorded(cli, new)


def hook_counts(lab: Lab) -> dict[str, int]:
    """Our jumps in other chains: each must be there exactly once."""
    part = our_part(lab, positions=False)
    wanted = {
        "ipv4 DOCKER-USER": "-j DOCKWALL-FORWARD",
        "ipv6 DOCKER-USER": "-j DOCKWALL-FORWARD",
        "ipv4 INPUT": "-j DOCKWALL-INPUT",
        "ipv6 INPUT": "-j DOCKWALL-INPUT",
        "ipv6 FORWARD": "-j DOCKER-USER",
    }
    return {
        key: sum(rule.endswith(jump) for rule in part.get(key, [])) for key, jump in wanted.items()
    }


ROUNDS = 50


@pytest.mark.timeout(900)  # ~75 s on an idle machine; each round is two CLI runs
def test_two_simultaneous_applies_end_with_exactly_one_policy_in_force(cli: LabCli) -> None:
    paths = [cli.policy(policy_with(12, n), f"p{n}.yaml") for n in (3, 4)]
    expected = []
    for path in paths:
        cli.apply(path)
        expected.append((our_part(cli.lab), our_sets(cli.lab)))
    assert expected[0] != expected[1]
    waited = 0
    winners = []
    started = time.monotonic()
    for round_ in range(ROUNDS):
        procs = [start(cli.lab, "apply", "--backend", "iptables", "-f", str(p)) for p in paths]
        outputs = [proc.communicate(timeout=GENEROUS) for proc in procs]
        for proc, (_, stderr) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, f"round {round_}: {stderr}"
        waited += sum("waiting for the lock held by pid" in err for _, err in outputs)
        live = (our_part(cli.lab), our_sets(cli.lab))
        assert live in expected, f"round {round_}: neither policy exactly in force"
        assert hook_counts(cli.lab) == dict.fromkeys(hook_counts(cli.lab), 1), round_
        assert our_sets(cli.lab) == referenced_sets(cli.lab), f"round {round_}: leaked set"
        winners.append(expected.index(live))
    took = time.monotonic() - started
    print(f"\n{ROUNDS} rounds in {took:.0f}s; a command waited in {waited}; winners {winners}")
    assert waited > 0, "the two applies never met: the test did not test the lock"
    last = paths[winners[-1]]
    other = paths[1 - winners[-1]]
    assert (cli.plan_exit(last), cli.plan_exit(other)) == (0, 2)


def test_no_wait_fails_fast_and_a_waiting_apply_says_whom_it_waits_for(
    cli: LabCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cli.policy(SMALL)
    monkeypatch.setenv("DOCKWALL_RUN_DIR", host_runner(cli.lab).env["DOCKWALL_RUN_DIR"])
    message = f"waiting for the lock held by pid {os.getpid()} (lab test)..."
    with firewall_lock("lab test"):
        argv = ("apply", "--backend", "iptables", "--no-wait", "-f", str(path))
        busy = cli.run(*argv, check=False)
        assert busy.returncode == 4
        assert busy.stderr.strip() == (
            f"error: the firewall is locked by pid {os.getpid()} (lab test); not waiting "
            "(--no-wait), nothing changed"
        )
        log = cli.workdir / "waiting.log"
        with log.open("w") as err:
            runner = host_runner(cli.lab)
            waiting = subprocess.Popen(
                runner.argv_for([sys.executable, "-m", "dockwall", *argv[:3], "-f", str(path)]),
                env={**os.environ, **runner.env},
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        said = wait_until(lambda: message in log.read_text(), GENEROUS, interval=0.1)
        assert said is not None, log.read_text()
        time.sleep(1)
        assert waiting.poll() is None, "it waits while the lock is held"
        assert cli.plan_exit(path) == 2, "and has changed nothing yet"
    assert waiting.wait(timeout=GENEROUS) == 0, log.read_text()
    assert cli.plan_exit(path) == 0


def test_apply_or_reset_while_the_agent_runs_another_policy_is_refused_unless_forced(
    cli: LabCli, agents: Agents
) -> None:
    mine = cli.policy(SMALL, "agent.yaml")
    other = cli.policy(policy_with(12, 5), "other.yaml")
    agent = agents.start(mine)
    state = agent.wait_ready()
    assert state["policy"] == str(mine)
    refused = cli.run("apply", "--backend", "iptables", "-f", str(other), check=False)
    assert refused.returncode == 1
    message = refused.stderr.strip()
    assert message.startswith(f"error: the dockwall agent (pid {agent.pid}) enforces {mine}")
    assert f"edit {mine}" in message and "--force" in message
    reset = cli.run("reset", "--backend", "iptables", check=False)
    assert reset.returncode == 1 and "--force" in reset.stderr
    assert cli.plan_exit(mine) == 0, "nothing was changed"
    assert cli.apply(mine).returncode == 0, "the agent's own file may be applied"
    forced = cli.run("apply", "--backend", "iptables", "--force", "-f", str(other))
    assert forced.returncode == 0
    back = wait_until(lambda: cli.plan_exit(mine) == 0, 30.0, interval=0.5)
    assert back is not None, "the agent puts its policy back, as the refusal said"
