"""The cyclic garbage collector paused around work that builds only acyclic objects.

Planning a large table and parsing a large live ruleset each allocate hundreds of
thousands of small dicts, lists and strings, none of them cyclic: the collector's passes
over them cost about as much as building them (a third of explain's parse time) and can
never free anything. Shared by backends and explain, so both pause it the same way.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Re-enables the collector afterwards only if it was enabled before (nesting is safe)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
