"""A loopback UDP resolver for the forwarder's unit tests: upstream.DNS_PORT points at
it, and each datagram it receives is answered with what the test's function returns."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import pytest

from dockwall.dnsproxy import upstream


@contextmanager
def loopback_resolver(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[bytes], Iterable[bytes]]
) -> Iterator[None]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    monkeypatch.setattr(upstream, "DNS_PORT", sock.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            for datagram in answer(data):
                sock.sendto(datagram, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        sock.close()
