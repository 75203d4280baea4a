"""Reading a policy file safely: only a regular file, bounded in size, never blocking.

The policy decides who may reach what, and the agent rereads it while it runs, so
the file is treated as untrusted input: a FIFO would block the read forever (and the
agent with it), a symlink to /dev/zero would never end, and a huge file costs memory
and seconds out of proportion (measured: an 8 MiB policy takes ~14 s and ~360 MiB to
parse; 1 MiB takes ~1.3 s and ~75 MiB, ~2.6 s and ~165 MiB for the densest YAML). The
file's type and size are checked with stat before it is opened, checked again on the
opened descriptor (the path may have been swapped in between), and the read stops one
byte past the limit whatever the file does meanwhile.

Who may write the file is checked the way sshd's StrictModes checks authorized_keys: a
policy that someone other than root or the caller can change is a firewall they can
change, which is worth a warning.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from dockwall.errors import Location, PolicyError

DEFAULT_MAX_BYTES = 1024 * 1024
MAX_BYTES_ENV = "DOCKWALL_MAX_POLICY_BYTES"
_HOW = f" (raise it with --max-policy-bytes or {MAX_BYTES_ENV})"
_CHUNK = 64 * 1024
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True)
class PolicyBytes:
    """A policy file's contents and what is wrong with who may write it."""

    data: bytes
    warnings: tuple[str, ...]


def max_bytes_from_env() -> int:
    """The limit in force: DOCKWALL_MAX_POLICY_BYTES, else the default."""
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise PolicyError(
            Location(MAX_BYTES_ENV), "", f"expected a positive number of bytes, got {raw!r}"
        )
    return value


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _error(path: Path, message: str) -> PolicyError:
    return PolicyError(Location(str(path)), "", message)


def _check(path: Path, st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise _error(path, f"not a regular file ({kind_of(st.st_mode)})")
    if st.st_size > limit:
        raise _error(path, f"the file is {st.st_size} bytes; the limit is {limit} bytes{_HOW}")


def read_policy_bytes(path: Path, limit: int | None = None) -> PolicyBytes:
    """The file's bytes, or a PolicyError saying why it was not read.

    O_NONBLOCK makes even a FIFO swapped in after the stat open at once (and the fstat
    then refuses it); on a regular file the flag changes nothing.
    """
    limit = max_bytes_from_env() if limit is None else limit
    try:
        _check(path, path.stat(), limit)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise _error(path, f"cannot read the policy: {exc.strerror or exc}") from None
    try:
        opened = os.fstat(fd)
        _check(path, opened, limit)
        data = _read_bounded(path, fd, limit)
    except OSError as exc:
        raise _error(path, f"cannot read the policy: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return PolicyBytes(data, tuple(writable_warnings(path, opened)))


def _read_bounded(path: Path, fd: int, limit: int) -> bytes:
    """At most `limit` bytes; a file that grows past it during the read is refused."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise _error(path, f"the file grew past the limit of {limit} bytes while being read{_HOW}")


def trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def writable_warnings(path: Path, st: os.stat_result) -> list[str]:
    """StrictModes for a policy: the file and the directory holding it must be writable
    by root or the caller alone. A sticky directory (/tmp) is spared the writable check:
    others can neither replace nor rename a file they do not own there."""
    found = _problems(str(path), st, directory=False)
    parent = Path(os.path.realpath(path)).parent
    with contextlib.suppress(OSError):
        found += _problems(str(parent), parent.stat(), directory=True)
    return found


def _problems(name: str, st: os.stat_result, *, directory: bool) -> list[str]:
    what = "the directory of the policy" if directory else "the policy file"
    found = []
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not (directory and st.st_mode & stat.S_ISVTX):
        who = "everyone" if st.st_mode & stat.S_IWOTH else f"group {st.st_gid}"
        found.append(
            f"{name}: {what} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}), "
            f"who can change the firewall through it; run chmod go-w {name}"
        )
    if not trusted_owner(st.st_uid):
        found.append(
            f"{name}: {what} is owned by uid {st.st_uid}, not root or you, who can change "
            f"the firewall through it; run chown root {name}"
        )
    return found
