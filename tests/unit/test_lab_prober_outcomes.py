"""How the lab's prober names the way a closed probe ended (no root, no traffic)."""

from __future__ import annotations

import errno

from dockwall.lab.prober import failure


def test_reset_and_port_unreachable_are_refused() -> None:
    assert failure(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) == "refused"


def test_other_icmp_errors_are_unreachable() -> None:
    for code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES):
        assert failure(OSError(code, "error")) == "unreachable"


def test_silence_is_a_timeout() -> None:
    assert failure(TimeoutError()) == "timeout"
