"""The line diff of one chain, shared by both backends, so a plan reads like `git diff`.

Order matters in a chain, so a moved rule shows as removed and added again.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from dockwall.backends.base import Change


def line_changes(
    family: str, where: str, before: Sequence[str], after: Sequence[str]
) -> list[Change]:
    """What turns `before` into `after`, each run of removals ahead of its additions."""
    found: list[Change] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag != "equal":
            found += [Change(family, "remove", where, text) for text in before[a0:a1]]
            found += [Change(family, "add", where, text) for text in after[b0:b1]]
    return found
