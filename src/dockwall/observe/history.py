"""Which container had an address when: names for drops, across recreations.

A drop is named by the container that held the address at the drop's time, not now:
a recreated container gets a new address (and maybe its old address goes to another
container), and a drop read a moment late must still name the right one. Bounded: the
oldest intervals go first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from dockwall.model.state import Address, Container
from dockwall.statedir import write_atomically

MAX_INTERVALS = 20_000
STARTUP_GRACE = 5.0  # seconds between a container's first packet and the agent seeing it
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


@dataclass
class Holder:
    """One container holding one address from `since` until `until` (None: still)."""

    address: str
    id: str
    name: str
    project: str | None
    service: str | None
    since: float
    until: float | None = None


class AddressHistory:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.by_address: dict[str, list[Holder]] = {}
        self.keys: dict[str, str] = {}
        if path is not None:
            self.load(path)

    def load(self, path: Path) -> None:
        try:
            rows = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        for row in rows if isinstance(rows, list) else []:
            try:
                holder = Holder(**row)
            except TypeError:
                continue
            self.by_address.setdefault(holder.address, []).append(holder)
            self.keys[holder.id] = holder.name

    def update(self, containers: list[Container], now: float) -> None:
        """The containers running now: new holders start, vanished ones end."""
        current: dict[str, Container] = {}
        for container in containers:
            self.keys[container.id] = container.name
            for attachment in container.attachments:
                for address in attachment.addresses:
                    current[str(address)] = container
        changed = False
        for text, holders in self.by_address.items():
            last, holder = holders[-1], current.get(text)
            if last.until is None and (holder is None or holder.id != last.id):
                last.until, changed = now, True
        for text, container in current.items():
            holders = self.by_address.setdefault(text, [])
            if holders and holders[-1].until is None and holders[-1].id == container.id:
                continue
            labels = container.labels
            holders.append(
                Holder(
                    text,
                    container.id,
                    container.name,
                    labels.get(COMPOSE_PROJECT),
                    labels.get(COMPOSE_SERVICE),
                    now,
                )
            )
            changed = True
        if changed:
            self.trim()
            self.save()

    def at(self, address: Address, when: float) -> Holder | None:
        """Who held `address` at `when`; a drop logged just before its container started
        (the defaults hold it until then) names the container that started next."""
        holders = self.by_address.get(str(ipaddress.ip_address(address)), [])
        for holder in reversed(holders):
            if holder.since <= when and (holder.until is None or when <= holder.until):
                return holder
        later = [h for h in holders if h.since > when and h.since - when <= STARTUP_GRACE]
        return later[0] if later else None

    def name_of_key(self, key: str) -> str:
        """The name of the container whose id starts with `key` (a guard key)."""
        for container_id, name in self.keys.items():
            if container_id.startswith(key):
                return name
        return key

    def trim(self) -> None:
        total = sum(len(h) for h in self.by_address.values())
        if total <= MAX_INTERVALS:
            return
        ended = sorted(
            (h for hs in self.by_address.values() for h in hs if h.until is not None),
            key=lambda h: h.until or 0.0,
        )
        for holder in ended[: total - MAX_INTERVALS]:
            self.by_address[holder.address].remove(holder)

    def save(self) -> None:
        if self.path is None:
            return
        rows = [asdict(h) for hs in self.by_address.values() for h in hs]
        with contextlib.suppress(OSError):
            write_atomically(self.path, json.dumps(rows))
