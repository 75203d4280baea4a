"""The drop journal: JSON lines under the run dir, rotated by size, bounded on disk.

`drops.jsonl` is written by the agent and read by `dockwall logs`; when it passes
`max_bytes` it becomes `drops.jsonl.1` (the previous `.1` is dropped), so the journal
never holds more than twice `max_bytes`. One line per event: a drop, a `lost` marker
(sequence gap or overrun) or a `suppressed` summary (drops the kernel counted but the
rate limit kept out of the log).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from dockwall.statedir import run_dir

NAME = "drops.jsonl"
MAX_BYTES = 8 << 20


def journal_path() -> Path:
    return run_dir() / NAME


class Journal:
    """Appends lines, flushed per batch so `logs -f` sees a drop at once.

    The file (and its directory) is made by the first write, not by the constructor:
    an agent that exits on a bad policy file before logging any drop leaves nothing
    behind in the run directory."""

    def __init__(self, path: Path | None = None, max_bytes: int = MAX_BYTES) -> None:
        self.path = path or journal_path()
        self.max_bytes = max_bytes
        self.file: TextIO | None = None

    def write(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        file = self.opened()
        file.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries))
        file.flush()
        if file.tell() >= self.max_bytes:
            self.rotate()

    def opened(self) -> TextIO:
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("a", encoding="utf-8")
        return self.file

    def rotate(self) -> None:
        self.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def parse_line(line: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def read_all(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """The rotated file first, then the current one."""
    path = path or journal_path()
    for part in (path.with_name(path.name + ".1"), path):
        try:
            with part.open(encoding="utf-8") as found:
                for line in found:
                    entry = parse_line(line)
                    if entry is not None:
                        yield entry
        except FileNotFoundError:
            continue


def follow(path: Path | None = None, poll: float = 0.1) -> Iterator[dict[str, Any]]:
    """New lines as they are written, across rotations (a new inode starts over). A file
    there at the start is read from its end (read_all showed the rest); one that appears
    later (the agent makes it with its first drop) from its beginning."""
    path = path or journal_path()
    current: TextIO | None = None
    inode = None
    buffered = ""
    skip_to_end = True
    while True:
        if current is None:
            try:
                current = path.open(encoding="utf-8")
            except FileNotFoundError:
                skip_to_end = False
                time.sleep(poll)
                continue
            if skip_to_end:
                current.seek(0, os.SEEK_END)
            inode = os.fstat(current.fileno()).st_ino
        chunk = current.read()
        if chunk:
            buffered += chunk
            *lines, buffered = buffered.split("\n")
            for line in lines:
                entry = parse_line(line)
                if entry is not None:
                    yield entry
            continue
        try:
            if os.stat(path).st_ino != inode:
                current.close()
                current = path.open(encoding="utf-8")
                inode = os.fstat(current.fileno()).st_ino
                continue
        except FileNotFoundError:
            pass
        time.sleep(poll)
