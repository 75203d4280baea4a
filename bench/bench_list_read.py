"""Reading an edited million-line feed against the one last applied, in one process: the
bytes way (`hostlines`, for a file that is exactly its IPv4 hosts) against the set way
(`listchange`, what any other IPv4 host feed takes, and what this one took before),
for a 1% edit at the ends (removed from the front, added at the end) and a 1% edit
spread through the file, three rounds each (medians). Both ways must find the same
change; the state written after it (the file's bytes and keys, fsynced) is timed too.
No root, no lab: the state directory is a temporary one.

    .venv/bin/python bench/bench_list_read.py [ENTRIES]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.bench_lists import address, changed, scattered, write_list
from dockwall.compile.ir import AddressSet, Ruleset
from dockwall.engine import applied_contents
from dockwall.policy.listfile import ListContents, read_list_file
from dockwall.statefile import commit_pending, save_pending

ENTRIES = 1_000_000
ROUNDS = 3


def save(contents: ListContents) -> float:
    """What an apply writes for the list before its load (the load itself is not here)."""
    found = AddressSet("big", "big.txt", contents.digest, contents.v4, contents.v6)
    started = time.perf_counter()
    save_pending("nftables", Ruleset((), (), None, None, lists=(found,)), {found.digest: 1})
    commit_pending()
    return time.perf_counter() - started


def timed_read(path: Path, previous: ListContents) -> tuple[ListContents, float]:
    started = time.perf_counter()
    read = read_list_file(path, previous=previous)
    return read, time.perf_counter() - started


def one_round(path: Path) -> tuple[float, float, float]:
    """(set way, bytes way, state written) for the file as it is now."""
    previous = applied_contents("big")
    assert previous is not None
    as_sets = replace(previous, v4=tuple(previous.v4))
    by_sets, set_s = timed_read(path, as_sets)
    by_bytes, bytes_s = timed_read(path, previous)
    assert by_sets.change is not None and by_bytes.change is not None
    assert set(by_sets.change.removed4) == set(by_bytes.change.removed4)
    assert set(by_sets.change.added4) == set(by_bytes.change.added4)
    return set_s, bytes_s, save(by_bytes)


def run(entries: int = ENTRIES) -> str:
    os.environ["DOCKWALL_STATE_DIR"] = tempfile.mkdtemp(prefix="dockwall-bench-read-")
    path = Path(tempfile.mkdtemp(prefix="dockwall-bench-read-")) / "big.txt"
    members = [address(i) for i in range(entries)]
    write_list(path, members)
    save(read_list_file(path))
    rows = []
    for kind in ("1% at the ends", "1% spread through"):
        at_ends = kind.endswith("ends")
        found = []
        for round_ in range(ROUNDS):
            start = entries * (1 if at_ends else 3) + round_ * entries // 100
            members = changed(members, start)[0] if at_ends else scattered(members, start)
            write_list(path, members)
            found.append(one_round(path))
        set_s, bytes_s, save_s = (statistics.median(f[i] for f in found) for i in range(3))
        rows.append(
            f"| {kind} | {entries:,} | {set_s:.2f} s | {bytes_s:.3f} s | "
            f"{set_s / bytes_s:.1f}x | {save_s:.3f} s |\n"
        )
    return (
        f"Reproduce: `.venv/bin/python -m bench.bench_list_read {entries}`. Medians of "
        f"{ROUNDS} rounds, one process.\n\n"
        "| edit | entries | read, set way | read, bytes way | faster | state written |\n"
        "|---|---|---|---|---|---|\n" + "".join(rows)
    )


if __name__ == "__main__":
    sys.stdout.write(run(int(sys.argv[1]) if len(sys.argv) > 1 else ENTRIES))
