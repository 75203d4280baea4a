"""Where dockwall keeps its state, and the one way it writes a file there.

Both locations can be moved with environment variables, which the lab uses to give
each lab its own. Every write is a temporary file in the same directory, fsynced and
renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def state_dir() -> Path:
    return Path(os.environ.get("DOCKWALL_STATE_DIR", "/var/lib/dockwall"))


def run_dir() -> Path:
    return Path(os.environ.get("DOCKWALL_RUN_DIR", "/run/dockwall"))


def fsync_dir(directory: Path) -> None:
    """A rename is durable only once the directory holding it is on disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str | bytes, sync_dir: bool = True) -> None:
    """A temporary file next to `path`, fsynced and renamed over it: a crash leaves the
    old file or the new one, never half of one, and never a stray temporary file name
    another writer could collide with. `sync_dir=False` leaves the directory's fsync,
    which makes the rename durable, to the next write into the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)
