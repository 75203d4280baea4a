"""Opens and closes TCP connections for a fixed time and prints how many succeeded.

Run inside the lab's internet namespace. Each connection ends with a reset (linger 0)
so the client never runs out of ports to TIME_WAIT: only the handshake is measured.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

LINGER_RESET = struct.pack("ii", 1, 0)


def connect_for(host: str, port: int, source: str, seconds: float) -> dict[str, float]:
    opened = failed = 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        sock.settimeout(1.0)
        try:
            sock.bind((source, 0))
            sock.connect((host, port))
            opened += 1
        except OSError:
            failed += 1
        finally:
            sock.close()
    return {"opened": opened, "failed": failed, "seconds": time.monotonic() - start}


if __name__ == "__main__":
    host, port, source, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    print(json.dumps(connect_for(host, port, source, seconds)))
