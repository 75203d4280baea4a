"""Docker's event stream, read on a thread and handed over through a queue.

The SDK's event stream blocks; the agent must also wake for drift checks and
debouncing, so events arrive as queue items, and a broken stream arrives as a
`Disconnected` item instead of an exception on some other thread.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import DockerException

WATCHED = {
    "container": {"start", "die", "destroy", "rename", "update"},
    "network": {"connect", "disconnect", "create", "destroy"},
}


@dataclass(frozen=True)
class Event:
    kind: str
    action: str
    container_id: str | None


@dataclass(frozen=True)
class Disconnected:
    reason: str


Item = Event | Disconnected


def event_of(raw: dict[str, Any]) -> Event | None:
    kind, action = raw.get("Type", ""), str(raw.get("Action", "")).split(":")[0]
    if action not in WATCHED.get(kind, set()):
        return None
    attributes = (raw.get("Actor") or {}).get("Attributes") or {}
    if kind == "container":
        return Event(kind, action, (raw.get("Actor") or {}).get("ID"))
    return Event(kind, action, attributes.get("container"))


def pump(client: docker.DockerClient, since: int, out: queue.Queue[Item]) -> None:
    """Feeds events until the stream ends; the end itself is reported, never raised."""
    try:
        for raw in client.events(decode=True, since=since, filters={"type": list(WATCHED)}):
            event = event_of(raw)
            if event is not None:
                out.put(event)
        out.put(Disconnected("event stream ended"))
    except (DockerException, OSError, ValueError) as exc:
        out.put(Disconnected(f"event stream failed: {exc}"))


def start_pump(client: docker.DockerClient, since: int, out: queue.Queue[Item]) -> threading.Thread:
    thread = threading.Thread(target=pump, args=(client, since, out), daemon=True)
    thread.start()
    return thread
