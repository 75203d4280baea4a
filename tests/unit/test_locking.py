"""The firewall lock, between real processes, and signals held during a transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockwall.errors import DockwallError
from dockwall.locking import EXIT_LOCKED, LockBusy, firewall_lock, lock_path
from dockwall.signals import signals_deferred

HOLDER = """
import sys
from dockwall.errors import DockwallError
from dockwall.locking import firewall_lock
with firewall_lock("dockwall apply"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKWALL_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


@pytest.fixture
def holder(run_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock until its stdin is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DOCKWALL_RUN_DIR": str(run_dir)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_no_wait_fails_fast_naming_the_holder(holder: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    with pytest.raises(LockBusy) as info, firewall_lock("dockwall reset", wait=False):
        pytest.fail("the lock was taken twice")
    assert time.monotonic() - started < 5
    assert info.value.exit_code == EXIT_LOCKED == 4
    assert str(info.value) == (
        f"the firewall is locked by pid {holder.pid} (dockwall apply); not waiting "
        "(--no-wait), nothing changed"
    )


def test_a_second_command_waits_then_runs(holder: subprocess.Popen[str]) -> None:
    said: list[str] = []
    order: list[str] = []

    def second() -> None:
        with firewall_lock("dockwall apply", say=said.append) as held:
            order.append(f"second {held}")

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 10
    while not said and time.monotonic() < deadline:
        time.sleep(0.02)
    assert said == [f"waiting for the lock held by pid {holder.pid} (dockwall apply)..."]
    assert order == [], "it must wait while the other process holds the lock"
    assert holder.stdin is not None
    holder.stdin.close()
    thread.join(timeout=10)
    assert order == ["second True"]


def test_the_lock_goes_with_a_killed_holder(holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    with firewall_lock("dockwall apply", wait=False) as held:
        assert held
        assert lock_path().read_text() == f"pid {os.getpid()} (dockwall apply)\n"
    assert lock_path().read_text() == "", "the holder's name goes with the lock"
    assert lock_path().stat().st_mode & 0o777 == 0o600, "nobody else can open it to lock"


def test_a_waiting_agent_gives_up_when_asked_to_stop(holder: subprocess.Popen[str]) -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with firewall_lock("dockwall agent", stop=stop) as held:
        assert not held


def test_an_unusable_run_dir_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "run"
    blocker.write_text("")
    monkeypatch.setenv("DOCKWALL_RUN_DIR", str(blocker))
    message = r"cannot open the lock file .*nothing was changed"
    with pytest.raises(DockwallError, match=message), firewall_lock("dockwall apply"):
        pytest.fail("locked in a directory that cannot exist")


def test_signals_wait_for_the_end_of_the_transaction() -> None:
    got: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: got.append("handled"))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            got.append("transaction done")
            blocked = subprocess.run(
                ["grep", "^SigBlk", "/proc/self/status"], check=True, capture_output=True, text=True
            ).stdout.split()[1]
        got.append("after")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert got == ["transaction done", "handled", "after"]
    mask = int(blocked, 16)
    assert mask & (1 << (signal.SIGTERM - 1)) and mask & (1 << (signal.SIGINT - 1)), (
        "programs started during the transaction inherit the blocked signals"
    )
