"""Runs `dockwall apply` N times in one process, alternating between policy files.

The very same CLI entry (`dockwall.cli.app`) as `dockwall apply`, minus a Python start
per apply (seconds each on a busy machine), so that N applies fit in one idle gap:

    apply_many.py 20 iptables a.yaml b.yaml
"""

from __future__ import annotations

import sys

from dockwall.cli import app


def main() -> None:
    count, backend, *policies = sys.argv[1:]
    for i in range(int(count)):
        policy = policies[i % len(policies)]
        app(["apply", "--backend", backend, "-f", policy], standalone_mode=False)
    print(f"applied {count}", flush=True)


if __name__ == "__main__":
    main()
