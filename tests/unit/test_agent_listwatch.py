"""The agent's list watcher: a list file still being written waits for a later poll, a
file written while it was read is read again, and a bad one is not read at every poll."""

from __future__ import annotations

import os
from pathlib import Path

from dockwall.agent.listwatch import SETTLE_SECONDS, ListWatch
from dockwall.policy.model import Policy

POLICY = Policy.model_validate({"version": 1, "lists": {"feeds": {"file": "feeds.txt"}}})


def written(path: Path, text: str, at: float) -> None:
    path.write_text(text)
    os.utime(path, (at, at))


def watch_at(tmp_path: Path, wall: list[float]) -> ListWatch:
    return ListWatch(tmp_path / "policy.yaml", POLICY, wall=lambda: wall[0], sleep=lambda _: None)


def test_a_file_written_just_now_waits_until_it_has_settled(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.txt"
    wall = [1_000_000.0]
    written(feeds, "192.0.2.1\n", wall[0] - 10)
    watch = watch_at(tmp_path, wall)
    assert watch.poll(POLICY) == "same"
    written(feeds, "", wall[0] - SETTLE_SECONDS / 3)  # truncated, the rest not yet written
    assert watch.poll(POLICY) == "unsettled"
    wall[0] += SETTLE_SECONDS
    assert watch.poll(POLICY) == "changed"
    watch.read(POLICY)
    assert watch.poll(POLICY) == "same"


def test_a_file_that_changed_while_it_was_read_is_read_again(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.txt"
    wall = [1_000_000.0]
    written(feeds, "192.0.2.1\n", wall[0] - 10)
    watch = watch_at(tmp_path, wall)
    written(feeds, "192.0.2.", wall[0] - 5)
    assert watch.poll(POLICY) == "changed"
    written(feeds, "192.0.2.2\n", wall[0] - 4)  # the writer went on during the read
    watch.read(POLICY)
    assert watch.poll(POLICY) == "changed"


def test_a_bad_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.txt"
    wall = [1_000_000.0]
    written(feeds, "192.0.2.1\n", wall[0] - 10)
    watch = watch_at(tmp_path, wall)
    written(feeds, "not an address\n", wall[0] - 5)
    assert watch.poll(POLICY) == "changed"
    watch.failed()
    assert watch.poll(POLICY) == "same"
    written(feeds, "192.0.2.3\n", wall[0] - 1)
    assert watch.poll(POLICY) == "changed"


def test_a_time_in_the_future_does_not_hold_a_list_back(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.txt"
    wall = [1_000_000.0]
    written(feeds, "192.0.2.1\n", wall[0] - 10)
    watch = watch_at(tmp_path, wall)
    written(feeds, "192.0.2.9\n", wall[0] + 3600)
    assert watch.poll(POLICY) == "changed"


def test_a_file_that_moves_during_the_recheck_waits(tmp_path: Path) -> None:
    """Truncated a while ago and written now (a writer that computed in between): the
    old truncation time looks settled, the recheck sees the size move."""
    feeds = tmp_path / "feeds.txt"
    wall = [1_000_000.0]
    written(feeds, "192.0.2.1\n", wall[0] - 10)

    def writer_goes_on(_: float) -> None:
        if feeds.stat().st_size == 0:
            written(feeds, "192.0.2.1\n192.0.2.2\n", wall[0])

    watch = ListWatch(tmp_path / "policy.yaml", POLICY, wall=lambda: wall[0], sleep=writer_goes_on)
    written(feeds, "", wall[0] - 5)
    assert watch.poll(POLICY) == "unsettled"
    wall[0] += 1
    assert watch.poll(POLICY) == "changed"
