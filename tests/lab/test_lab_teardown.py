"""`lab down --all` leaves nothing behind, also after a crash.

Marked exclusive: `--all` removes every lab on the machine, so it runs alone, after the
parallel suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dockwall.lab import processes
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab, read_pid
from dockwall.lab.mounts import mount_points_under
from dockwall.lab.netns import list_namespaces
from dockwall.runner import SubprocessRunner

from ..conftest import lab_preconditions, new_lab_name

pytestmark = [pytest.mark.lab, pytest.mark.exclusive]


def traces(name: str) -> list[str]:
    """Every kind of leftover a lab can leave, described; empty means clean."""
    names = t.LabNames(name)
    found = [ns for ns in list_namespaces(SubprocessRunner()) if ns.startswith(t.PREFIX)]
    found += mount_points_under((t.STATE_ROOT, t.DATA_ROOT))
    found += [str(p) for p in (names.state_dir, names.data_dir) if p.exists()]
    found += [str(p) for p in processes.cgroup_dirs(names.cgroup_parent)]
    for pid in processes.all_pids():
        line = " ".join(processes.cmdline(pid))
        if processes.is_running(pid) and (str(t.STATE_ROOT) in line or f"--lab {name}" in line):
            found.append(f"pid {pid}: {line}")
    return found


def test_down_all_after_crash_leaves_nothing() -> None:
    problems = lab_preconditions()
    if problems:
        pytest.fail("; ".join(problems))
    name = new_lab_name("x")
    lab = Lab(name)
    lab.up()
    assert traces(name), "a running lab must be visible to the leftover check"
    dockerd = read_pid(lab.names.dockerd_pidfile)
    assert dockerd is not None
    os.kill(dockerd, signal.SIGKILL)
    subprocess.run(
        [sys.executable, "-m", "dockwall", "lab", "down", "--all"], check=True, timeout=120
    )
    assert traces(name) == []
    assert not any(Path(p).exists() for p in (t.STATE_ROOT / name, t.DATA_ROOT / name))
