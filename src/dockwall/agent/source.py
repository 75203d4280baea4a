"""The real event source: a Docker client, its reader, and its event stream on a thread."""

from __future__ import annotations

import queue
import time

import docker

from dockwall.agent.events import Item, start_pump
from dockwall.model.state import Bridge, Container, HostState
from dockwall.sources.docker_state import DockerReader, connect


class DockerSession:
    """A `Session` over one Docker client; the stream's pump feeds a queue so the loop
    can also wake for debouncing and drift checks."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.reader = DockerReader(client)
        self.items: queue.Queue[Item] = queue.Queue()
        # A second back: an event in the same second as the state read is not lost.
        start_pump(client, int(time.time()) - 1, self.items)

    def state(self) -> HostState:
        return self.reader.state()

    def bridges(self) -> dict[str, Bridge]:
        return self.reader.bridges()

    def container(self, container_id: str, bridges: dict[str, Bridge]) -> Container | None:
        return self.reader.container(container_id, bridges)

    def next_item(self, timeout: float) -> Item | None:
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.reader.client.close()


def docker_session() -> DockerSession:
    """Connects like the docker CLI (DOCKER_HOST, contexts); DockwallError if unreachable."""
    return DockerSession(connect())
