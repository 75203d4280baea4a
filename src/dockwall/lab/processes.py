"""Finds and stops the lab's processes, including those a crashed run left behind.

Teardown cannot trust pidfiles alone: after a crash they may be gone or stale. A
process belongs to a lab if it runs in one of the lab's network namespaces, in the
lab's cgroup, or names the lab's directories or tag on its command line.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def is_running(pid: int) -> bool:
    """True for a live process; a zombie has finished and only waits to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory under `parent` in every v1 hierarchy, deepest first."""
    found: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return found
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / parent
        if top.is_dir():
            found.extend(p for p in top.rglob("*") if p.is_dir())
            found.append(top)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids(dirs: Iterable[Path]) -> set[int]:
    pids: set[int] = set()
    for d in dirs:
        try:
            pids.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        except OSError:
            continue
    return pids


def lab_pids(ns_inodes: set[int], markers: tuple[str, ...], cgroup_parent: str) -> set[int]:
    """Processes that belong to a lab by namespace, command line or cgroup.

    Markers are matched against the command line padded with spaces, so callers pass
    them with a delimiter on each side (" --lab x ", "/run/dockwall-lab/x/").
    """
    me = os.getpid()
    pids = cgroup_pids(cgroup_dirs(cgroup_parent))
    for pid in all_pids():
        if pid == me:
            continue
        if netns_inode(pid) in ns_inodes:
            pids.add(pid)
            continue
        line = f" {' '.join(cmdline(pid))} "
        if any(marker in line for marker in markers):
            pids.add(pid)
    pids.discard(me)
    return pids


def stop(pids: set[int], grace: float = 10.0) -> None:
    """SIGTERM, a bounded wait, then SIGKILL for whatever is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        alive = {p for p in pids if is_running(p)}
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(is_running(p) for p in alive):
            time.sleep(0.05)


def remove_cgroups(parent: str) -> None:
    for d in cgroup_dirs(parent):
        try:
            d.rmdir()
        except OSError:
            continue
