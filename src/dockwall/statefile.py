"""What dockwall remembers between runs: the last applied ruleset and the agent's state.

The last applied ruleset is what `apply --boot` restores before Docker starts, so the
firewall holds from the first packet after a reboot. It must never disagree with what
is in force without anyone being told, so a load is a small transaction on disk too:
the new ruleset is written as *pending* before the load, promoted to *last applied*
by a rename once the load succeeded, and removed if the load failed. A process killed
in between leaves the pending file, and `apply --boot` decides which of the two is
live (see Engine.boot). Every write is a temporary file in the same directory, fsynced
and renamed, so a crash never leaves half a file.

The elements of the named lists (a million lines for a threat feed) are not in the
JSON: each list's canonical contents are a file of their own under `lists/`, named by
the list file's digest and written once, so an apply that changes only rules writes no
element, and a plan reads the digest last applied (`applied_list`) without reading a
single element. The elements are read only where they are needed: a restore at boot,
or an in-place update computing the difference from the previous contents.

Both locations can be moved with environment variables, which the lab uses to give
each lab its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import tempfile
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, overload

from pydantic import TypeAdapter, ValidationError

from dockwall.compile.ir import AddressSet, Ruleset
from dockwall.errors import DockwallError
from dockwall.policy.hostlines import KEY_TYPE, HostLines

LAST_APPLIED = "last-applied.json"
PENDING = "pending-apply.json"
LISTS = "lists"
LIST_HEADER = "dockwall-list"
FQDN_LEARNED = "fqdn-learned.json"  # the DNS forwarder's record (dnsproxy/learned.py)
EXIT_STATE_NOT_SAVED = 3


class StateError(DockwallError):
    """The rules are in force, but `apply --boot` would not restore them."""

    exit_code = EXIT_STATE_NOT_SAVED

    def __init__(self, path: Path, exc: OSError) -> None:
        self.path = path
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError | NotADirectoryError) and exc.filename:
            reason = f"{exc.filename} is not a directory"
        super().__init__(f"rules are in force but the state could not be saved to {path}: {reason}")


@functools.cache
def ruleset_adapter() -> TypeAdapter[Ruleset]:
    """Built on first use: its schema costs a plan in sync, which never reads or writes a
    ruleset, a tenth of its time."""
    return TypeAdapter(Ruleset)


def state_dir() -> Path:
    return Path(os.environ.get("DOCKWALL_STATE_DIR", "/var/lib/dockwall"))


def run_dir() -> Path:
    return Path(os.environ.get("DOCKWALL_RUN_DIR", "/run/dockwall"))


@dataclass(frozen=True)
class Applied:
    backend: str
    ruleset: Ruleset


def _fsync_dir(directory: Path) -> None:
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
        _fsync_dir(path.parent)


def _payload(backend: str, ruleset: Ruleset) -> str:
    """The ruleset with the lists' elements left out: they are in `lists/` (save_lists)."""
    bare = replace(ruleset, lists=tuple(without_elements(found) for found in ruleset.lists))
    dumped = json.loads(ruleset_adapter().dump_json(bare))
    return json.dumps({"backend": backend, "ruleset": dumped})


def without_elements(found: AddressSet) -> AddressSet:
    return replace(found, v4=(), v6=(), change=None)


def list_store(digest: str) -> Path:
    return state_dir() / LISTS / f"{digest}.txt"


def keys_store(digest: str) -> Path:
    """Beside the elements of a list whose file was exactly its IPv4 hosts (HostLines):
    their sorted keys, which the next version of the file is read against."""
    return state_dir() / LISTS / f"{digest}.keys"


def save_lists(lists: tuple[AddressSet, ...], lines: Mapping[str, int] | None = None) -> None:
    """Each list's elements, once per digest: a header line (digest, the count per
    family, which a reader checks, so a torn or foreign file is never trusted, whether
    each family needs intervals, and the file's line count, or -1 when unknown or when
    lines were skipped), then one element per line, IPv4 first."""
    for found in lists:
        lines_read = (lines or {}).get(found.digest, -1)
        path = list_store(found.digest)
        if path.exists() and (lines_read < 0 or saved_lines(path) >= 0):
            continue
        flags = f"{int(found.interval4)} {int(found.interval6)} {lines_read}"
        head = f"{LIST_HEADER} {found.digest} {len(found.v4)} {len(found.v6)} {flags}\n"
        if isinstance(found.v4, HostLines) and not found.v6:
            write_atomically(keys_store(found.digest), found.v4.keys().tobytes(), sync_dir=False)
            write_atomically(path, head.encode("ascii") + found.v4.body)
            continue
        elements = (*found.v4, *found.v6)
        write_atomically(path, head + "".join(("\n".join(elements), "\n" if elements else "")))


def saved_lines(path: Path) -> int:
    """The line count in a saved list's header (-1 unknown): contents saved without one
    are saved again once a clean read of the same file knows it."""
    try:
        with path.open() as handle:
            head = handle.readline().split()
        return int(head[6])
    except (OSError, ValueError, IndexError):
        return -1


@dataclass(frozen=True)
class StoredList:
    """A list's canonical contents as saved for one digest of its file."""

    v4: Sequence[str]
    v6: Sequence[str]
    interval4: bool
    interval6: bool
    lines: int


def stored_elements(digest: str) -> tuple[Sequence[str], Sequence[str]] | None:
    """(v4, v6) as saved for `digest`, or None when missing or not what the header says."""
    stored = stored_list(digest)
    return None if stored is None else (stored.v4, stored.v6)


class SavedElements:
    """Both families' elements of one saved list, split into strings at the first use.

    A plan of a million-entry list in sync needs only the counts: splitting the million
    lines into strings costs a tenth of a second, a tenth of such a plan, while reading
    the file and counting its lines (which is how a torn file is told) costs a hundredth.
    So the file is read and checked at once, and split only when an element is asked for.
    """

    def __init__(self, body: bytes, count4: int, count6: int) -> None:
        self.body = body
        self.counts = (count4, count6)
        self.read: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def elements(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self.read is None:
            lines = self.body.decode("ascii", errors="replace").split("\n")
            count4 = self.counts[0]
            self.read = tuple(lines[:count4]), tuple(lines[count4:-1])
            self.body = b""
        return self.read


class StoredElements(Sequence[str]):
    """One family's elements of a saved list (SavedElements): the length from the header,
    the elements (and any comparison) once split."""

    def __init__(self, saved: SavedElements, slot: int) -> None:
        self.saved, self.slot = saved, slot

    def loaded(self) -> tuple[str, ...]:
        return self.saved.elements()[self.slot]

    def __len__(self) -> int:
        return self.saved.counts[self.slot]

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self.loaded()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.loaded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredElements | tuple | list):
            return len(self) == len(other) and self.loaded() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.loaded())

    def __repr__(self) -> str:
        return f"StoredElements(ipv{(4, 6)[self.slot]}, {len(self)} elements)"


def stored_list(digest: str) -> StoredList | None:
    """The contents saved for `digest`, or None when missing or not what the header says
    (the header's counts are checked against the lines there, unsplit: SavedElements)."""
    try:
        data = list_store(digest).read_bytes()
    except OSError:
        return None
    first, _, body = data.partition(b"\n")
    head = first.decode("ascii", errors="replace").split()
    if len(head) != 7 or head[:2] != [LIST_HEADER, digest] or not data.endswith(b"\n"):
        return None
    try:
        count4, count6, interval4, interval6, read = (int(field) for field in head[2:])
    except ValueError:
        return None
    if min(count4, count6) < 0 or body.count(b"\n") != count4 + count6:
        return None
    if not count6 and not interval4 and keys_store(digest).exists():
        hosts = HostLines(body, count4, load_keys=functools.partial(stored_keys, digest))
        return StoredList(hosts, (), False, bool(interval6), read)
    saved = SavedElements(body, count4, count6)
    v4, v6 = StoredElements(saved, 0), StoredElements(saved, 1)
    return StoredList(v4, v6, bool(interval4), bool(interval6), read)


def stored_keys(digest: str) -> array[int] | None:
    """The keys saved beside a list's elements (keys_store), or None when unreadable;
    HostLines checks their count against its own."""
    keys = array(KEY_TYPE)
    try:
        data = keys_store(digest).read_bytes()
        keys.frombytes(data)
    except (OSError, ValueError):
        return None
    return keys


def with_elements(found: AddressSet) -> AddressSet:
    """A list of a state file as applied: its elements from `lists/` (an older state
    file kept them inline, and then they are already there)."""
    if found.v4 or found.v6:
        return found
    stored = stored_elements(found.digest)
    if stored is None:
        raise ValueError(f"the elements of list {found.name} ({list_store(found.digest)})")
    return replace(found, v4=stored[0], v6=stored[1])


def prune_lists() -> None:
    """Element files neither the last applied nor a pending ruleset names any more."""
    keep = {f"{digest}{kind}" for digest in recorded_digests() for kind in (".txt", ".keys")}
    with contextlib.suppress(OSError):
        for path in (state_dir() / LISTS).iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)


def recorded_digests() -> set[str]:
    digests: set[str] = set()
    for name in (LAST_APPLIED, PENDING):
        record = _list_records(state_dir() / name)
        if record is not None:
            digests |= {found.digest for found in record[1].values()}
    return digests


def save_pending(backend: str, ruleset: Ruleset, lines: Mapping[str, int] | None = None) -> None:
    """Before a load: the ruleset about to be handed to the kernel (list elements that
    are not saved yet first, so a pending ruleset never names elements that are not).
    `lines`: each list file's line count by digest, when read without a line skipped:
    the saved contents then stand for that file (`stored_list`)."""
    save_lists(ruleset.lists, lines)
    write_atomically(state_dir() / PENDING, _payload(backend, ruleset))
    found = {item.name: AppliedList(item.name, item.digest) for item in ruleset.lists}
    _pending[state_dir()] = (backend, found)


def commit_pending() -> None:
    """After a successful load: the pending ruleset becomes the one boot restores."""
    directory = state_dir()
    os.replace(directory / PENDING, directory / LAST_APPLIED)
    _fsync_dir(directory)
    remember(directory / LAST_APPLIED, _pending.pop(directory, None))
    prune_lists()


def discard_pending() -> None:
    """After a failed (rolled back) load: the last applied ruleset is still the live one."""
    with contextlib.suppress(OSError):
        (state_dir() / PENDING).unlink(missing_ok=True)
    prune_lists()


def save_applied(backend: str, ruleset: Ruleset) -> None:
    save_lists(ruleset.lists)
    write_atomically(state_dir() / LAST_APPLIED, _payload(backend, ruleset))


def forget_applied() -> None:
    """After a reset there is nothing to restore at boot, nor learned addresses for the
    next agent to put back."""
    for name in (PENDING, LAST_APPLIED):
        (state_dir() / name).unlink(missing_ok=True)
    prune_lists()
    (run_dir() / FQDN_LEARNED).unlink(missing_ok=True)


def _read(path: Path) -> Applied:
    payload = json.loads(path.read_text())
    ruleset = ruleset_adapter().validate_python(payload["ruleset"])
    lists = tuple(with_elements(found) for found in ruleset.lists)
    return Applied(str(payload["backend"]), replace(ruleset, lists=lists))


def load_applied() -> Applied:
    path = state_dir() / LAST_APPLIED
    try:
        return _read(path)
    except FileNotFoundError as exc:
        raise DockwallError(f"{path}: nothing applied yet, so nothing to restore") from exc
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise DockwallError(f"{path}: unreadable ({exc}); run dockwall apply") from exc


def load_pending() -> Applied | None:
    """The ruleset of a load that was interrupted before it was committed, if any; an
    unreadable one counts as none (it was never the one in force)."""
    try:
        return _read(state_dir() / PENDING)
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return None


@dataclass(frozen=True)
class AppliedList:
    """A named list as last applied: the digest of its file, and its elements on demand
    (None when they were not kept: a state file of an older version, or damaged)."""

    name: str
    digest: str

    def elements(self) -> tuple[Sequence[str], Sequence[str]] | None:
        """(v4, v6) from `lists/`: a million lines, read only when iterated."""
        return stored_elements(self.digest)


_pending: dict[Path, tuple[str, dict[str, AppliedList]]] = {}
_distrusted: contextvars.ContextVar[bool] = contextvars.ContextVar("distrusted", default=False)
_records: dict[Path, tuple[tuple[int, int, int], tuple[str, dict[str, AppliedList]] | None]] = {}


@contextlib.contextmanager
def records_distrusted() -> Iterator[None]:
    """Within: `applied_list` answers None, so the backends compare the kernel's own
    elements one by one (`plan --verify-lists`) instead of trusting the record."""
    token = _distrusted.set(True)
    try:
        yield
    finally:
        _distrusted.reset(token)


def applied_list(name: str, backend: str) -> AppliedList | None:
    """The list `name` as `backend` last applied it, which is what its kernel set holds
    unless someone edited the set by hand; None when that is not known for sure: no
    last applied ruleset, another backend's, a list it did not have, a pending ruleset
    (an interrupted load: the kernel holds one of the two), or inside
    `records_distrusted`. The backends then read the kernel set itself.

    Cheap on a hot path (the agent plans on every event): only the small JSON is read,
    and again only when it changed on disk."""
    if _distrusted.get() or (state_dir() / PENDING).exists():
        return None
    record = _list_records(state_dir() / LAST_APPLIED)
    if record is None or record[0] != backend:
        return None
    return record[1].get(name)


def applied_digests() -> dict[str, str]:
    """Every list's digest as last applied, whichever backend: what `status` shows."""
    record = _list_records(state_dir() / LAST_APPLIED)
    return {name: found.digest for name, found in record[1].items()} if record else {}


def remember(path: Path, record: tuple[str, dict[str, AppliedList]] | None) -> None:
    """The lists just committed, so the next plan (the agent's, at once) need not parse
    the file it just wrote."""
    if record is None:
        return
    with contextlib.suppress(OSError):
        st = path.stat()
        _records[path] = ((st.st_mtime_ns, st.st_size, st.st_ino), record)


def _list_records(path: Path) -> tuple[str, dict[str, AppliedList]] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    version = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _records.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        payload = json.loads(path.read_text())
        found = {
            str(item["name"]): AppliedList(str(item["name"]), str(item["digest"]))
            for item in payload["ruleset"].get("lists", ())
        }
        record: tuple[str, dict[str, AppliedList]] | None = (str(payload["backend"]), found)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        record = None
    _records[path] = (version, record)
    return record


def save_agent_state(state: dict[str, Any]) -> None:
    write_atomically(run_dir() / "agent.json", json.dumps(state, default=str))


def load_agent_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((run_dir() / "agent.json").read_text())
    except (OSError, ValueError):
        return None
    return state
