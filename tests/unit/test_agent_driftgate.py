"""The drift gate's arithmetic: a listing is skipped only when every commit since the
last good one was the agent's own writer's, and never past the backstop."""

from __future__ import annotations

from dockwall.agent.driftgate import BACKSTOP_SECONDS, DriftGate, only_ours_since
from dockwall.errors import DockwallError


def test_only_our_commits_between_two_stamps() -> None:
    assert only_ours_since((10, 0), (10, 0))
    assert only_ours_since((10, 0), (13, 3))
    assert not only_ours_since((10, 0), (11, 0)), "someone else committed"
    assert not only_ours_since((10, 0), (14, 3)), "ours and someone else's"
    assert only_ours_since((0xFFFFFFFF, 5), (1, 7)), "the kernel's u32 wrapped"


def test_the_gate_needs_a_verified_stamp_a_fresh_one_and_the_backstop_not_passed() -> None:
    gate = DriftGate(lambda: (5, 0))
    assert not gate.unchanged(gate.stamp(), 0.0), "nothing verified yet"
    gate.found_in_force((5, 0), 100.0)
    assert gate.unchanged((5, 0), 101.0)
    assert gate.unchanged((6, 1), 101.0)
    assert not gate.unchanged((6, 0), 101.0)
    assert not gate.unchanged(None, 101.0)
    assert not gate.unchanged((5, 0), 100.0 + BACKSTOP_SECONDS)
    gate.forget()
    assert not gate.unchanged((5, 0), 101.0)


def test_a_stamp_that_cannot_be_read_is_none() -> None:
    def broken() -> tuple[int, int]:
        raise DockwallError("netlink: query: no reply from the kernel")

    assert DriftGate(broken).stamp() is None
    assert DriftGate(None).stamp() is None
