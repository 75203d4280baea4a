"""The lab's wait for a listener reads the kernel's socket tables of a namespace."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dockwall.errors import DockwallError
from dockwall.lab import sockets


def test_a_listening_and_a_bound_socket_are_seen_and_a_closed_one_is_not(tmp_path: Path) -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        udp.bind(("127.0.0.1", 0))
        tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        wanted = {("tcp", 4, tcp_port), ("udp", 4, udp_port)}
        assert sockets.missing_sockets(os.getpid(), wanted) == {("tcp", 4, tcp_port)}
        tcp.listen(1)
        assert sockets.missing_sockets(os.getpid(), wanted) == set()
        sockets.wait_bound(os.getpid(), wanted, tmp_path / "none.log")


def test_a_socket_that_never_binds_fails_with_the_listeners_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sockets, "WAIT_SECONDS", 0.2)
    log = tmp_path / "listener.log"
    log.write_text("OSError: [Errno 98] Address already in use\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with pytest.raises(DockwallError, match=rf"tcp/{free} \(IPv6\).*Address already in use"):
        sockets.wait_bound(os.getpid(), {("tcp", 6, free)}, log)


def test_a_wildcard_listener_binds_both_families() -> None:
    assert sockets.listener_sockets((80,), (53,)) == {
        ("tcp", 4, 80),
        ("tcp", 6, 80),
        ("udp", 4, 53),
        ("udp", 6, 53),
    }
