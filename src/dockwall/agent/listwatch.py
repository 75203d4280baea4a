"""Watching the files of the policy's named lists, so a feed refresh is applied in time.

Polled with the agent's drift check (every second by default, so a change is in force
within about two): a stat per list is cheap, portable and sees what inotify would miss
(a list on NFS, a file replaced by rename into a directory not watched). The agent then
reads the policy again, lists included, and a change of list contents only is loaded
in place by the backends.

Between edits, a plan trusts the record of the last apply for what a list set holds
(its digest), so the drift check sees a deleted set or table but not an element edited
into dockwall's set by hand. Once an hour (`DEEP_CHECK_SECONDS`) the drift check reads
the kernel's elements and compares them one by one (`plan --verify-lists`), and repairs
what differs: a few seconds of nft reading for a million entries, once an hour rather
than every second.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal

from dockwall.policy import Policy
from dockwall.policy.lists import list_path
from dockwall.statefile import records_distrusted

DEEP_CHECK_SECONDS = 3600.0
SETTLE_SECONDS = 0.3
RECHECK_SECONDS = 0.1  # a changed file must also look the same this much later

ListVersion = tuple[int, int, int] | str
Poll = Literal["same", "changed", "unsettled"]


def list_version(path: Path) -> ListVersion:
    """mtime, size and inode, as for the policy file: a rewrite within one clock tick or
    an editor's write-and-rename shows in one of them; a missing file is a version too."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc.strerror or exc}"
    return st.st_mtime_ns, st.st_size, st.st_ino


class ListWatch:
    """The versions of the list files of the policy in force."""

    def __init__(
        self,
        policy_path: Path,
        policy: Policy,
        clock: Callable[[], float] = time.monotonic,
        deep_every: float = DEEP_CHECK_SECONDS,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy_path = policy_path
        self.seen = self.versions(policy)
        self.checked = self.seen
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.deep_every = deep_every
        self.deep_checked = clock()

    def versions(self, policy: Policy) -> dict[str, ListVersion]:
        return {
            name: list_version(list_path(self.policy_path, spec.file))
            for name, spec in policy.lists.items()
        }

    def poll(self, policy: Policy) -> Poll:
        """Whether a list file changed since the last read, and has settled: one written
        in the last SETTLE_SECONDS, or whose size or time moves within RECHECK_SECONDS,
        may still be being written (`curl -o`, a script that truncates and then writes:
        an empty feed read in between would open everything it blocks), so the caller
        waits for a later poll (`unsettled`). A writer that truncates and then pauses
        for longer still defeats this: writing beside the file and renaming it over
        never does."""
        now = self.versions(policy)
        if now == self.seen:
            self.checked = now
            return "same"
        if any(self.fresh(v) for name, v in now.items() if v != self.seen.get(name)):
            return "unsettled"
        self.sleep(RECHECK_SECONDS)
        if self.versions(policy) != now:
            return "unsettled"
        self.checked = now
        return "changed"

    def fresh(self, version: ListVersion) -> bool:
        """Written less than SETTLE_SECONDS ago (a time in the future is not fresh: a
        skewed clock must not hold a list back for ever)."""
        return isinstance(version, tuple) and 0 <= self.wall() - version[0] / 1e9 < SETTLE_SECONDS

    def read(self, policy: Policy) -> None:
        """The lists of `policy` were just read: a file whose version moved since
        `poll` looked (written while it was read) keeps its old version, so the next
        poll reads it again."""
        now = self.versions(policy)
        self.seen = {
            name: self.checked[name] if self.checked.get(name, version) != version else version
            for name, version in now.items()
        }

    def failed(self) -> None:
        """The read after `poll` failed: those versions count as seen (a bad file is
        read again when it changes, not at every poll)."""
        self.seen = self.checked

    def deep_due(self, policy: Policy) -> bool:
        """Whether the next drift check compares the list sets' elements."""
        return bool(policy.lists) and self.clock() - self.deep_checked >= self.deep_every

    def drift_check(self, policy: Policy) -> AbstractContextManager[None]:
        """What a drift check runs under: the deep comparison of the list sets' elements
        when the policy has lists and the last one is `deep_every` seconds ago."""
        if not self.deep_due(policy):
            return contextlib.nullcontext()
        self.deep_checked = self.clock()
        return records_distrusted()
