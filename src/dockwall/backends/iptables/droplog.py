"""NFLOG rules before each drop, in iptables-save's spelling.

One hashlimit bucket per direction (rules naming the same hashlimit table share it),
so a flood against many containers still yields at most the configured rate of
records, while the drop rule after it counts every packet. The table name carries the
rate: the kernel reuses an existing table of that name with its old settings, so a
changed rate must get a new name to take effect.
"""

from __future__ import annotations

from dockwall.compile.ir import DropLog, LogDirection, LogLimit
from dockwall.compile.origin import DIRECTION_CODES, log_prefix

UNITS = {"second": "sec", "minute": "min", "hour": "hour", "day": "day"}


def table_name(direction: LogDirection, limit: LogLimit) -> str:
    """At most 15 characters (the kernel's limit): `dwi20s50`."""
    return f"dw{DIRECTION_CODES[direction]}{limit.count}{limit.unit[0]}{limit.burst}"


def log_rules(log: DropLog | None, direction: LogDirection, tag: str) -> list[str]:
    """The rule to put before a drop, or none when this direction is not logged."""
    limit = log.limit(direction) if log is not None else None
    if log is None or limit is None:
        return []
    return [
        f"-m hashlimit --hashlimit-upto {limit.count}/{UNITS[limit.unit]} "
        f"--hashlimit-burst {limit.burst} --hashlimit-name {table_name(direction, limit)} "
        f'-j NFLOG --nflog-prefix "{log_prefix(direction, tag)}" '
        f"--nflog-group {log.group} --nflog-size {log.snaplen}"
    ]
