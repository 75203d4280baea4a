"""Policy files that hang or blow up (issue 10, item 5), on the lab's real Docker host.

Each test is a reproduction from the issue: `plan` on a FIFO hung, on a symlink to
/dev/zero it died with a MemoryError after 2.7 GB, a 50 MB policy took 3.8 GB and more
than 120 s, and the agent blocked forever (no drift repair, SIGTERM ignored) once its
policy file became a FIFO. Every wait is bounded; timings are printed (`-s`).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from dockwall.backends.iptables.ownership import MARK
from dockwall.lab.lab import Lab

from .agent_helpers import AgentProcess, Agents, LabCli, our_part, wait_until

pytestmark = pytest.mark.lab

POLICY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress: [{port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]
"""
GENEROUS = 60.0  # seconds: detects a hang on a busy machine without flaking


def timed_plan(cli: LabCli, path: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    argv = ("plan", "--backend", "iptables", "-f", str(path))
    result = cli.run(*argv, check=False, timeout=GENEROUS)
    return result.returncode, result.stderr.strip(), time.monotonic() - started


def test_plan_on_a_fifo_fails_at_once(cli: LabCli, tmp_path: Path) -> None:
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    code, stderr, took = timed_plan(cli, fifo)
    print(f"\nplan on a FIFO: exit {code} after {took:.1f}s")
    assert (code, stderr) == (1, f"error: {fifo}: not a regular file (a FIFO)")


def test_plan_on_a_symlink_to_dev_zero_is_refused_unread(cli: LabCli, tmp_path: Path) -> None:
    link = tmp_path / "policy.yaml"
    link.symlink_to("/dev/zero")
    code, stderr, took = timed_plan(cli, link)
    print(f"\nplan on /dev/zero: exit {code} after {took:.1f}s")
    assert (code, stderr) == (1, f"error: {link}: not a regular file (a character device)")


def test_a_50_mb_policy_is_refused_fast_and_the_firewall_untouched(
    cli: LabCli, tmp_path: Path
) -> None:
    cli.apply(cli.policy(POLICY))
    before = our_part(cli.lab)
    big = tmp_path / "big.yaml"
    entry = "  - name: c{}\n    ingress: [{{port: 80/tcp, from: [192.0.2.1, 192.0.2.2]}}]\n"
    with big.open("w") as out:
        out.write("version: 1\ncontainers:\n")
        for index in range(50 * 1024 * 1024 // len(entry)):
            out.write(entry.format(index))
    size = big.stat().st_size
    started = time.monotonic()
    argv = ("apply", "--backend", "iptables", "-f", str(big))
    result = cli.run(*argv, check=False, timeout=GENEROUS)
    took = time.monotonic() - started
    print(f"\napply of a {size} byte policy: exit {result.returncode} after {took:.1f}s")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {big}: the file is {size} bytes; the limit is 1048576 bytes (raise it "
        "with --max-policy-bytes or DOCKWALL_MAX_POLICY_BYTES)"
    )
    assert our_part(cli.lab) == before, "the live firewall is untouched"


def detach_and_delete(lab: Lab, chain: str = "DOCKWALL-FORWARD") -> None:
    """Removes our chain by hand, as an admin (or a firewall reload) might: in one
    transaction, so the agent cannot put the jump back between the steps."""
    script = f"*filter\n-D DOCKER-USER {MARK} -j {chain}\n-F {chain}\n-X {chain}\nCOMMIT\n"
    lab.host.run(["iptables-restore", "--noflush"], input=script)


def break_file(path: Path, how: str) -> None:
    if how == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(b"")
    elif how == "oversized":
        path.write_text(POLICY + "#" * (2 * 1024 * 1024) + "\n")
    else:
        raise AssertionError(how)


def warnings_of(agent: AgentProcess) -> list[str]:
    return [line for line in agent.log().splitlines() if "policy not reloaded" in line]


def stop_time(agent: AgentProcess) -> float:
    """Seconds from SIGTERM until the process is gone (bounded by GENEROUS)."""
    started = time.monotonic()
    os.kill(agent.pid, signal.SIGTERM)
    gone = wait_until(lambda: not agent.alive(), GENEROUS, interval=0.02)
    assert gone is not None, f"agent ignored SIGTERM for {GENEROUS}s:\n{agent.log()}"
    return time.monotonic() - started


@pytest.mark.parametrize("how", ["fifo", "deleted", "truncated", "oversized"])
def test_agent_under_a_broken_policy_file_keeps_repairing_drift_and_stops_on_sigterm(
    cli: LabCli, agents: Agents, how: str
) -> None:
    path = cli.policy(POLICY)
    agent = agents.start(path, drift_interval=0.5)
    agent.wait_ready()
    ours = our_part(cli.lab)
    break_file(path, how)
    seen = wait_until(lambda: bool(warnings_of(agent)), 10.0)
    assert seen is not None, f"no warning about the {how} policy:\n{agent.log()}"
    detach_and_delete(cli.lab)
    repaired = wait_until(lambda: our_part(cli.lab) == ours, 10.0)
    assert repaired is not None, f"drift not repaired under a {how} policy:\n{agent.log()}"
    time.sleep(1.5)  # three more drift checks: the file's state has not changed again
    assert len(warnings_of(agent)) == 1, agent.log()
    took = stop_time(agent)
    print(f"\n{how}: warned after {seen:.2f}s, repaired in {repaired:.2f}s, stopped in {took:.2f}s")
    assert took < 2.0, f"SIGTERM took {took:.2f}s"
    assert our_part(cli.lab) == ours, "stopping leaves the rules in force"


def test_a_world_writable_policy_gets_a_warning(cli: LabCli, tmp_path: Path) -> None:
    path = cli.policy(POLICY)
    path.chmod(0o666)
    argv = ("plan", "--backend", "iptables", "--detailed-exitcode", "-f", str(path))
    result = cli.run(*argv, check=False, timeout=GENEROUS)
    assert result.returncode == 2, result.stderr
    assert (
        f"warning: {path}: the policy file is writable by everyone (mode 0666), who can change "
        f"the firewall through it; run chmod go-w {path}"
    ) in result.stderr
