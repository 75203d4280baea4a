"""What the forwarder learned: (pattern, address) -> until when, and for which name.

Kept in memory for `status` and `explain`, and written to the run dir (a second after a
change, atomically) so an agent restart re-adds what had not expired yet. The kernel's
sets are the truth for packets; this is the record of why each address is there.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockwall.statedir import run_dir, write_atomically
from dockwall.statefile import FQDN_LEARNED

FILE = FQDN_LEARNED
REFRESH_SLACK = 0.1  # refresh an element when it would fall short by more than this share


@dataclass(frozen=True)
class Entry:
    pattern: str
    address: str
    name: str
    learned: float
    expires: float

    def left(self, now: float | None = None) -> float:
        return self.expires - (time.time() if now is None else now)


def learned_path() -> Path:
    return run_dir() / FILE


class LearnedStore:
    """Thread-safe: the forwarder's loop writes, the agent's loop and status read."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or learned_path()
        self.entries: dict[tuple[str, str], Entry] = {}
        self.by_address: dict[str, Entry] = {}
        self.lock = threading.Lock()
        self.dirty = False

    def needs(self, pattern: str, address: str, lifetime: int, now: float) -> bool:
        """Whether the kernel must hear of it: new, or its time left falls short."""
        with self.lock:
            entry = self.entries.get((pattern, address))
        if entry is None:
            return True
        return entry.expires < now + lifetime * (1 - REFRESH_SLACK)

    def record(self, entries: list[Entry]) -> None:
        with self.lock:
            for entry in entries:
                self.entries[(entry.pattern, entry.address)] = entry
                known = self.by_address.get(entry.address)
                if known is None or entry.expires >= known.expires:
                    self.by_address[entry.address] = entry
            self.dirty = True

    def name_of(self, address: str, now: float | None = None) -> str | None:
        """The name of the address's longest-lived entry, while it is in force: one
        dict look-up, cheap enough for every drop record."""
        moment = time.time() if now is None else now
        with self.lock:
            entry = self.by_address.get(address)
        return entry.name if entry is not None and entry.expires > moment else None

    def in_force(self, now: float | None = None) -> dict[str, int]:
        """Unexpired addresses per pattern, counted without sorting or purging (the
        metrics scrape asks this on every scrape)."""
        moment = time.time() if now is None else now
        counts: dict[str, int] = {}
        with self.lock:
            for (pattern, _), entry in self.entries.items():
                if entry.expires > moment:
                    counts[pattern] = counts.get(pattern, 0) + 1
        return counts

    def live(self, now: float | None = None) -> list[Entry]:
        moment = time.time() if now is None else now
        with self.lock:
            expired = [k for k, e in self.entries.items() if e.expires <= moment]
            for key in expired:
                del self.entries[key]
                self.dirty = True
            for address in [a for a, e in self.by_address.items() if e.expires <= moment]:
                del self.by_address[address]
            return sorted(self.entries.values(), key=lambda e: (e.pattern, e.address))

    def save(self) -> None:
        """Only the snapshot is taken under the lock, which the forwarder's loop takes
        for every learned answer: `asdict` of 10,000 entries under it (170 ms) held
        answers back for that long every second while learning."""
        with self.lock:
            if not self.dirty:
                return
            self.dirty = False
            entries = list(self.entries.values())
        data = [
            {"pattern": e.pattern, "address": e.address, "name": e.name,
             "learned": e.learned, "expires": e.expires}
            for e in entries
        ]  # fmt: skip
        write_atomically(self.path, json.dumps({"learned": data}))

    def load(self) -> None:
        self.record(read_entries(self.path))
        self.dirty = False


def read_entries(path: Path | None = None) -> list[Entry]:
    """Unexpired entries of a saved store; a missing or broken file is an empty one."""
    try:
        data: Any = json.loads((path or learned_path()).read_text())
        items = data["learned"]
        entries = [Entry(**item) for item in items]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    now = time.time()
    return [e for e in entries if e.expires > now and valid_address(e.address)]


def valid_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
