"""The agent's drop-log service: NFLOG records -> named journal entries.

Runs on its own thread beside the reconcile loop, which tells it after each apply what
is in force (`applied`). Each record becomes one journal line naming the container that
held the address at the time, the remote side, and the policy entry that denied it;
gaps become `lost` lines, and every few seconds the kernel's counters say how many
drops the rate limit kept out of the log (`suppressed` lines), so `logs` never
pretends a flood was smaller than it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockwall.backends.base import RuleCounter
from dockwall.compile.ir import LogDirection, Ruleset
from dockwall.compile.origin import describe_tag, parse_prefix
from dockwall.model.state import Container
from dockwall.observe.counters import suppressed_by_direction
from dockwall.observe.history import AddressHistory
from dockwall.observe.journal import Journal
from dockwall.observe.nflog import Lost, NflogReader, Record
from dockwall.observe.packet import Headers, headers

Log = Callable[[str], None]
Counters = Callable[[], list[RuleCounter]]
FqdnOf = Callable[[str], str | None]
SUMMARY_INTERVAL = 2.0
BIND_WAIT = 2.0  # seconds an apply waits for the reader to bind its ruleset's group


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")


@dataclass
class LogStats:
    """What metrics and `status` show about the log."""

    records: dict[str, int] = field(default_factory=lambda: {"ingress": 0, "egress": 0, "peers": 0})
    lost: int = 0
    overruns: int = 0
    foreign: int = 0


class DropLogService:
    def __init__(
        self,
        policy_name: str,
        history: AddressHistory,
        journal: Journal,
        log: Log,
        fqdn_of: FqdnOf = lambda _: None,
    ):
        self.policy_name = policy_name
        self.fqdn_of = fqdn_of
        self.history = history
        self.journal = journal
        self.log = log
        self.stats = LogStats()
        self.ruleset: Ruleset | None = None
        self.counters: Counters | None = None
        self.lock = threading.Lock()
        self.bound = threading.Condition(self.lock)
        self.group: int | None = None  # the group the reader thread has bound (or tried)
        self.running = False
        self.suppressed: dict[LogDirection, int] | None = None
        self.pending: tuple[list[Container], float] | None = None
        self.next_summary = time.monotonic() + SUMMARY_INTERVAL

    def applied(self, ruleset: Ruleset, containers: list[Container], counters: Counters) -> None:
        """Called on the agent's loop after each apply: only hands over what is in force
        (the history, which writes a file, is updated on this service's own thread).
        When the ruleset logs to another NFLOG group, it waits (BIND_WAIT at most) until
        the reader has bound it: so once the agent says a ruleset is in force, its
        drops are being logged, the first ones too."""
        wanted = ruleset.log.group if ruleset.log else None
        with self.bound:
            self.pending = (containers, time.time())
            self.ruleset, self.counters = ruleset, counters
            self.suppressed = None  # a load may reset the counters: take a new baseline
            self.next_summary = time.monotonic()
            self.bound.notify_all()
            if self.running:
                self.bound.wait_for(lambda: self.group == wanted, BIND_WAIT)

    def run(self, stop: threading.Event) -> None:
        reader: NflogReader | None = None
        group: int | None = None
        with self.lock:
            self.running = True
        while not stop.is_set():
            with self.lock:
                wanted = self.ruleset.log.group if self.ruleset and self.ruleset.log else None
            if wanted != group:
                if reader is not None:
                    reader.close()
                reader, group = self.bind(wanted), wanted
                with self.bound:
                    self.group = group
                    self.bound.notify_all()
            self.learn()
            if reader is None:
                with self.bound:
                    self.bound.wait(0.2)
                continue
            self.journal.write([self.entry(item) for item in reader.read(0.2)])
            if time.monotonic() >= self.next_summary:
                self.summarize()
        with self.lock:
            self.running = False
        if reader is not None:
            reader.close()

    def learn(self) -> None:
        """The containers of the last apply into the address history."""
        with self.lock:
            pending, self.pending = self.pending, None
        if pending is not None:
            self.history.update(*pending)

    def bind(self, group: int | None) -> NflogReader | None:
        if group is None:
            return None
        try:
            reader = NflogReader(group)
        except OSError as exc:
            self.log(f"error: drop log off: cannot read NFLOG group {group}: {exc}")
            return None
        self.log(f"drop log: reading NFLOG group {group}")
        return reader

    def entry(self, item: Record | Lost) -> dict[str, Any]:
        if isinstance(item, Lost):
            if item.count is None:
                self.stats.overruns += 1
            else:
                self.stats.lost += item.count
            return {"kind": "lost", "time": iso(item.time), "ts": item.time, "count": item.count}
        return self.drop(item)

    def drop(self, record: Record) -> dict[str, Any]:
        self.learn()  # an apply that happened while this batch was read comes first
        decoded = parse_prefix(record.prefix)
        found = headers(record.payload)
        if decoded is None or found is None:
            self.stats.foreign += 1
            return {"kind": "other", "time": iso(record.time), "ts": record.time,
                    "prefix": record.prefix}  # fmt: skip
        direction = decoded.direction
        self.stats.records[direction] += 1
        entry: dict[str, Any] = {
            "kind": "drop",
            "time": iso(record.time),
            "ts": record.time,
            "direction": direction,
            **self.sides(direction, found, record.time),
            "proto": found.proto,
            "port": found.destination_port,
            "source_port": found.source_port,
            "policy": describe_tag(
                decoded.tag, direction, self.policy_name, self.history.name_of_key
            ),
            "fqdn": self.fqdn_of(str(found.destination)) if direction == "egress" else None,
        }
        return entry

    def sides(self, direction: LogDirection, found: Headers, when: float) -> dict[str, Any]:
        """Ingress names the destination; egress and peers the sender."""
        mine, other = (
            (found.destination, found.source)
            if direction == "ingress"
            else (found.source, found.destination)
        )
        holder = self.history.at(mine, when)
        peer = self.history.at(other, when) if direction == "peers" else None
        return {
            "container": holder.name if holder else None,
            "container_id": holder.id[:12] if holder else None,
            "project": holder.project if holder else None,
            "service": holder.service if holder else None,
            "address": str(mine),
            "remote": str(other),
            "remote_container": peer.name if peer else None,
        }

    def summarize(self) -> None:
        """A `suppressed` line per direction whose drops outran its log since last time."""
        self.next_summary = time.monotonic() + SUMMARY_INTERVAL
        with self.lock:
            counters, ruleset = self.counters, self.ruleset
        if counters is None or ruleset is None or ruleset.log is None:
            return
        try:
            now = suppressed_by_direction(counters())
        except Exception as exc:
            self.log(f"warning: drop log: cannot read counters: {exc}")
            return
        before, self.suppressed = self.suppressed, now
        if before is None:
            return
        stamp = time.time()
        lines = [
            {
                "kind": "suppressed",
                "time": iso(stamp),
                "ts": stamp,
                "direction": d,
                "count": now[d] - before[d],
            }
            for d in now
            if ruleset.log.limit(d) is not None and now[d] > before[d]
        ]
        self.journal.write(lines)


def policy_name(path: Path) -> str:
    return path.name
