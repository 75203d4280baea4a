"""Watching the files of the policy's named lists, so a feed refresh is applied in time.

Polled with the agent's drift check (every second by default, so a change is in force
within about two): a stat per list is cheap, portable and sees what inotify would miss
(a list on NFS, a file replaced by rename into a directory not watched). The agent then
reads the policy again, lists included, and a change of list contents only is loaded
in place by the backends.
"""

from __future__ import annotations

from pathlib import Path

from dockwall.policy import Policy
from dockwall.policy.lists import list_path

ListVersion = tuple[int, int, int] | str


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

    def __init__(self, policy_path: Path, policy: Policy) -> None:
        self.policy_path = policy_path
        self.seen = self.versions(policy)

    def versions(self, policy: Policy) -> dict[str, ListVersion]:
        return {
            name: list_version(list_path(self.policy_path, spec.file))
            for name, spec in policy.lists.items()
        }

    def changed(self, policy: Policy) -> bool:
        """Whether a list file changed since the last call (each change is seen once)."""
        now = self.versions(policy)
        if now == self.seen:
            return False
        self.seen = now
        return True
