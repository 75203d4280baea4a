"""Policy files are read safely: only regular files, bounded in size, never blocking."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dockwall.errors import PolicyError
from dockwall.policy import read_policy
from dockwall.policy.policyfile import (
    DEFAULT_MAX_BYTES,
    MAX_BYTES_ENV,
    _problems,
    _read_bounded,
    read_policy_bytes,
)

GOOD = "version: 1\ndefaults: {ingress: deny}\n"


def refused(path: Path, limit: int | None = None) -> str:
    """The error message, read on a thread so a read that blocks fails instead of hanging."""
    found: list[BaseException] = []

    def read() -> None:
        try:
            read_policy_bytes(path, limit)
        except BaseException as exc:
            found.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), f"reading {path} blocked"
    assert found and isinstance(found[0], PolicyError), found
    return str(found[0])


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    assert refused(fifo) == f"{fifo}: not a regular file (a FIFO)"


def test_a_symlink_to_dev_zero_is_refused_unread(tmp_path: Path) -> None:
    link = tmp_path / "policy.yaml"
    link.symlink_to("/dev/zero")
    assert refused(link) == f"{link}: not a regular file (a character device)"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path) == f"{tmp_path}: not a regular file (a directory)"


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert refused(missing) == f"{missing}: cannot read the policy: No such file or directory"


def test_an_oversized_file_names_its_size_and_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD + "#" * 200 + "\n")
    size = path.stat().st_size
    assert refused(path, limit=100) == (
        f"{path}: the file is {size} bytes; the limit is 100 bytes "
        f"(raise it with --max-policy-bytes or {MAX_BYTES_ENV})"
    )
    assert read_policy_bytes(path, limit=size).data == path.read_bytes()


def test_the_limit_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    assert read_policy(path).policy.defaults.ingress == "deny"
    monkeypatch.setenv(MAX_BYTES_ENV, "10")
    assert "the limit is 10 bytes" in refused(path)
    monkeypatch.setenv(MAX_BYTES_ENV, "lots")
    assert refused(path) == f"{MAX_BYTES_ENV}: expected a positive number of bytes, got 'lots'"
    monkeypatch.delenv(MAX_BYTES_ENV)
    assert DEFAULT_MAX_BYTES == 1024 * 1024


def test_a_file_growing_during_the_read_is_cut_at_the_limit(tmp_path: Path) -> None:
    """A pipe stands in for a file that keeps growing after its size was checked."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"x" * 5000)
        with pytest.raises(PolicyError) as info:
            _read_bounded(tmp_path / "p.yaml", read_end, 1000)
        assert "grew past the limit of 1000 bytes while being read" in str(info.value)
    finally:
        os.close(read_end)
        os.close(write_end)


def fake_stat(mode: int, uid: int = 0, gid: int = 0) -> os.stat_result:
    return os.stat_result((mode, 1, 1, 1, uid, gid, 10, 0, 0, 0))


def test_writable_or_foreign_files_warn_like_sshd_strictmodes() -> None:
    regular = stat.S_IFREG
    assert _problems("p", fake_stat(regular | 0o644), directory=False) == []
    (world,) = _problems("p", fake_stat(regular | 0o666), directory=False)
    assert world.startswith("p: the policy file is writable by everyone (mode 0666)")
    assert "chmod go-w p" in world
    (group,) = _problems("p", fake_stat(regular | 0o664, gid=50), directory=False)
    assert "writable by group 50 (mode 0664)" in group
    foreign_uid = os.geteuid() + 4242
    (foreign,) = _problems("p", fake_stat(regular | 0o644, uid=foreign_uid), directory=False)
    assert f"is owned by uid {foreign_uid}, not root or you" in foreign


def test_a_writable_directory_warns_unless_sticky() -> None:
    directory = stat.S_IFDIR
    (warning,) = _problems("d", fake_stat(directory | 0o777), directory=True)
    assert warning.startswith("d: the directory of the policy is writable by everyone")
    assert _problems("/tmp", fake_stat(directory | 0o1777), directory=True) == []


def test_read_policy_reports_the_warnings_of_a_real_file(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    path.chmod(0o644)
    assert read_policy(path).warnings == ()
    path.chmod(0o646)
    (warning,) = read_policy(path).warnings
    assert warning.startswith(f"{path}: the policy file is writable by everyone (mode 0646)")


PARSE_JUST_UNDER_THE_LIMIT = """
import sys, time
from dockwall.errors import PolicyError
from dockwall.policy import parse_policy
from dockwall.policy.policyfile import DEFAULT_MAX_BYTES
head = "version: 1\\ncontainers:\\n  - name: a\\n    ingress:\\n      - port: 80/tcp\\n        from: ["
body = ", ".join(["1"] * ((DEFAULT_MAX_BYTES - len(head) - 3) // 3))
text = head + body + "]\\n"
assert len(text) <= DEFAULT_MAX_BYTES
started = time.perf_counter()
try:
    parse_policy(text.encode(), "p")
except PolicyError:
    pass
took = time.perf_counter() - started
# VmHWM belongs to this program's own address space; ru_maxrss would carry over the
# peak of the (possibly big) test worker this process was forked from.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(len(text), took, int(hwm.split()[1]) // 1024)
"""


def test_the_densest_policy_just_under_the_limit_parses_in_bounded_time_and_memory() -> None:
    """The default limit is chosen so that the worst YAML it admits (one flow list of
    ~350,000 one-character items) is read in seconds and a few hundred MiB at most."""
    result = subprocess.run(
        [sys.executable, "-c", PARSE_JUST_UNDER_THE_LIMIT],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    size, took, mib = result.stdout.split()
    print(f"\n{size} bytes parsed in {float(took):.1f}s, max RSS {mib} MiB")
    assert int(size) > DEFAULT_MAX_BYTES - 16
    assert int(mib) < 400, f"{mib} MiB"
    assert float(took) < 60, f"{took}s"
