"""Holds one TCP connection open and reports, line by line, whether it still works.

Tests use it to prove that re-applying rules leaves established connections alone: the
connection is opened before the change and must still echo data after it.
"""

from __future__ import annotations

import argparse
import socket
import sys


def main() -> None:
    parser = argparse.ArgumentParser(prog="dockwall-lab-holder")
    parser.add_argument("--src")
    parser.add_argument("--dst", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    try:
        sock = socket.create_connection(
            (args.dst, args.port),
            timeout=args.timeout,
            source_address=(args.src, 0) if args.src else None,
        )
        sock.recv(64)
    except OSError as exc:
        print(f"fail {exc}", flush=True)
        return
    print("connected", flush=True)
    for line in sys.stdin:
        payload = line.strip().encode() + b"\n"
        try:
            sock.sendall(payload)
            echoed = b""
            while len(echoed) < len(payload):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                echoed += chunk
            print("ok" if echoed == payload else "fail short", flush=True)
        except OSError as exc:
            print(f"fail {exc}", flush=True)


if __name__ == "__main__":
    main()
