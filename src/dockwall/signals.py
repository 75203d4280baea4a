"""SIGTERM and SIGINT wait while the firewall is being changed.

A transaction (new ipsets, the iptables-restore of each family, the sets that go, the
state file) interrupted half-way leaks sets or leaves the state disagreeing with the
kernel. So during one the signals are blocked: in this process, and in every program
it starts meanwhile (a blocked mask is inherited across fork and exec), so a SIGTERM to
the whole process group or cgroup (systemd, Ctrl-C on a terminal) cannot kill an
`ipset restore` half-way either. Once the transaction is over the signals are
delivered as if they had just arrived, to whatever handler was in place.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

DEFERRED = frozenset({signal.SIGTERM, signal.SIGINT})


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """The block runs to its end; SIGTERM/SIGINT received meanwhile are raised after it.

    Python handlers only run in the main thread, so elsewhere this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def record(signum: int, _: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, record) for signum in DEFERRED}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # pending ones reach `record`
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, left as it was
                signal.signal(signum, handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)
