"""One lock for everything that changes the firewall: apply, reset, boot, the agent.

Two writers that both plan against the same live ruleset and then both load produce
duplicated hooks, orphan chains and leaked sets, so planning and loading happen under
an exclusive flock on one file in the run directory. The kernel drops the lock when
its holder dies (even by SIGKILL), so a crash never leaves the host locked. The holder
writes its pid and command into the file, which is what a waiting command shows.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dockwall.errors import DockwallError
from dockwall.statedir import run_dir

LOCK_NAME = "firewall.lock"
EXIT_LOCKED = 4
POLL = 0.05

Say = Callable[[str], None]


class LockBusy(DockwallError):
    """--no-wait and someone else holds the lock: nothing was changed."""

    exit_code = EXIT_LOCKED


def lock_path() -> Path:
    return run_dir() / LOCK_NAME


def holder(path: Path) -> str:
    """`pid N (COMMAND)` as the holder wrote it, or a neutral phrase while it has not yet."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process"


def _open(path: Path) -> int:
    """Readable by its owner alone: flock needs no write access, so anyone who could
    open the file could take the lock and freeze every apply and the agent."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        return fd
    except OSError as exc:
        raise DockwallError(
            f"cannot open the lock file {path}: {exc.strerror or exc}; nothing was changed"
        ) from None


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def _claim(fd: int, command: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} ({command})\n".encode(), 0)


@contextlib.contextmanager
def firewall_lock(
    command: str,
    *,
    wait: bool = True,
    say: Say | None = None,
    stop: threading.Event | None = None,
) -> Iterator[bool]:
    """Holds the lock for the block; yields True, or False when `stop` was set while
    waiting (the agent is shutting down: the block must then change nothing).

    A waiter polls instead of blocking in flock, so a signal handler that sets `stop`
    is noticed within POLL seconds; `say` is told once whom it waits for.
    """
    path = lock_path()
    fd = _open(path)
    try:
        if not _try(fd):
            who = holder(path)
            if not wait:
                raise LockBusy(
                    f"the firewall is locked by {who}; not waiting (--no-wait), nothing changed"
                )
            if say is not None:
                say(f"waiting for the lock held by {who}...")
            while not _try(fd):
                if stop is not None and stop.is_set():
                    yield False
                    return
                time.sleep(POLL)
        _claim(fd, command)
        try:
            yield True
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
