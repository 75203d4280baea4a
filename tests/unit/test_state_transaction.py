"""The state `apply --boot` restores moves in step with the load, written atomically.

A fake backend keeps "the kernel" in a variable, so every interleaving of load, crash
and state write can be played without root.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockwall.backends.base import Change, Plan
from dockwall.compile.ir import Filter, Ruleset
from dockwall.engine import Engine, Selected
from dockwall.errors import CommandError, DockwallError
from dockwall.policy.model import BackendChoice
from dockwall.statefile import (
    EXIT_STATE_NOT_SAVED,
    LAST_APPLIED,
    PENDING,
    StateError,
    load_applied,
    load_pending,
    save_applied,
    save_pending,
    write_atomically,
)

OLD = Ruleset((), (), None, None)
NEW = Ruleset((), (), Filter(), None)
NAMES = {"OLD": OLD, "NEW": NEW}


@dataclass
class Kernel:
    live: Ruleset | None = None
    fail: bool = False
    leftover: bool = False
    loads: list[Ruleset | None] = field(default_factory=list)


@dataclass
class FakeBackend:
    kernel: Kernel
    name: str = "iptables"

    def plan_for(self, ruleset: Ruleset) -> Plan:
        """In sync when the kernel has `ruleset` (but for a leftover set); else one change
        naming it."""
        if ruleset == self.kernel.live:
            leftover = Change("ipv4", "remove", "ipset x", "(set destroyed)", leftover=True)
            return Plan(self.name, (leftover,) if self.kernel.leftover else ())
        name = next(key for key, value in NAMES.items() if value == ruleset)
        return Plan(self.name, (Change("ipv4", "add", "ruleset", name),))

    def apply(self, plan: Plan) -> None:
        if self.kernel.fail:
            raise CommandError(["iptables-restore"], 1, "Bad rule")
        self.kernel.leftover = False
        if plan.changes[0].leftover:
            return
        self.kernel.live = NAMES[plan.changes[0].text]
        self.kernel.loads.append(self.kernel.live)


@dataclass(frozen=True)
class FakeEngine(Engine):
    """Engine with planning and loading replaced; the state protocol is the real one."""

    kernel: Kernel = field(default_factory=Kernel)

    def plan_ruleset(
        self, ruleset: Ruleset, preferred: BackendChoice = "auto"
    ) -> tuple[Selected, list[Plan]]:
        backend = FakeBackend(self.kernel)
        return Selected(backend, "fake", ()), [backend.plan_for(ruleset)]  # type: ignore[arg-type]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "state"
    monkeypatch.setenv("DOCKWALL_STATE_DIR", str(directory))
    return directory


def engine_with(live: Ruleset | None) -> FakeEngine:
    return FakeEngine(runner=None, kernel=Kernel(live))  # type: ignore[arg-type]


def applied_with(engine: FakeEngine, ruleset: Ruleset) -> None:
    selected, plans = engine.plan_ruleset(ruleset)
    engine.apply(selected, plans, ruleset)


def test_apply_commits_the_state_after_the_load(state: Path) -> None:
    engine = engine_with(OLD)
    applied_with(engine, NEW)
    assert engine.kernel.live == NEW
    assert load_applied().ruleset == NEW
    assert not (state / PENDING).exists()
    assert sorted(p.name for p in state.iterdir()) == [LAST_APPLIED], "no temporary file left"


def test_a_failed_load_leaves_the_old_state(state: Path) -> None:
    engine = engine_with(OLD)
    applied_with(engine, OLD)
    engine.kernel.live = None
    applied_with(engine, OLD)
    engine.kernel.fail = True
    with pytest.raises(CommandError):
        applied_with(engine, NEW)
    assert load_applied().ruleset == OLD
    assert load_pending() is None


def test_an_unusable_state_dir_is_one_error_after_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DOCKWALL_STATE_DIR", str(blocker))
    engine = engine_with(OLD)
    with pytest.raises(StateError) as info:
        applied_with(engine, NEW)
    assert engine.kernel.live == NEW, "the rules are in force anyway"
    assert info.value.exit_code == EXIT_STATE_NOT_SAVED == 3
    assert str(info.value) == (
        f"rules are in force but the state could not be saved to {blocker}/{PENDING}: "
        f"{blocker} is not a directory"
    )


def test_boot_without_pending_restores_the_last_applied(state: Path) -> None:
    save_applied("iptables", NEW)
    engine = engine_with(None)
    booted = engine.boot()
    assert engine.kernel.live == NEW
    assert booted.note == "restored the last applied rules"


def test_boot_after_a_kill_between_load_and_commit_keeps_the_live_new_rules(
    state: Path,
) -> None:
    """SIGKILL after the kernel took the new rules, before the rename: pending is live."""
    save_applied("iptables", OLD)
    save_pending("iptables", NEW)
    engine = engine_with(NEW)
    booted = engine.boot()
    assert engine.kernel.loads == [], "nothing to load: the live rules are kept"
    assert "interrupted apply are live" in booted.note
    assert load_applied().ruleset == NEW
    assert load_pending() is None


def test_boot_after_a_kill_before_the_load_keeps_the_live_old_rules(state: Path) -> None:
    save_applied("iptables", OLD)
    save_pending("iptables", NEW)
    engine = engine_with(OLD)
    booted = engine.boot()
    assert engine.kernel.loads == []
    assert booted.note == "the last applied rules are live; kept"
    assert load_applied().ruleset == OLD
    assert load_pending() is None


def test_boot_after_a_reboot_with_a_pending_apply_restores_the_pending(state: Path) -> None:
    save_applied("iptables", OLD)
    save_pending("iptables", NEW)
    engine = engine_with(None)
    booted = engine.boot()
    assert engine.kernel.live == NEW
    assert booted.note == "restored the rules of an interrupted apply"
    assert load_applied().ruleset == NEW


def test_boot_with_nothing_saved_is_a_clear_error(state: Path) -> None:
    with pytest.raises(DockwallError, match="nothing applied yet"):
        engine_with(None).boot()


def test_write_atomically_keeps_the_old_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.json"
    write_atomically(path, json.dumps({"v": 1}))

    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_atomically(path, json.dumps({"v": 2}))
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"], "the temporary file is gone"


def test_boot_cleans_a_set_left_by_a_kill_and_keeps_the_live_old_rules(state: Path) -> None:
    """SIGKILL during the set load: the old rules are live next to a half-made set."""
    save_applied("iptables", OLD)
    save_pending("iptables", NEW)
    engine = engine_with(OLD)
    engine.kernel.leftover = True
    booted = engine.boot()
    assert booted.note == "the last applied rules are live; kept"
    assert not engine.kernel.leftover, "the leftover set was removed"
    assert engine.kernel.live == OLD and load_applied().ruleset == OLD
    assert load_pending() is None
