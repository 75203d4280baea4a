"""Accepts and closes TCP connections until its lifetime ends: the far side of the rate test.

Run inside a container's network namespace, so the connections cross the Docker host's
forward path (DNAT, dockwall, Docker's chains) like real traffic to a published port.
"""

from __future__ import annotations

import socket
import sys
import time


def accept_until(port: int, seconds: float) -> None:
    server = socket.create_server(("0.0.0.0", port), backlog=4096)
    server.settimeout(1.0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.close()


if __name__ == "__main__":
    accept_until(int(sys.argv[1]), float(sys.argv[2]))
