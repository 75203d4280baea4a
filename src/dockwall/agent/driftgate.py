"""Skipping the drift check's listing while nf_tables has not changed since the last one.

Why: the check lists our table with `nft` every second: most of a quiet agent's CPU
(3.5 s a minute against 0.8 s gated, docs/benchmarks.md), and while a listing runs the
DNS forwarder's writes to the learned sets can wait in the kernel (15-40 ms; not the
only cause of the learned-name latency tail, which the gate did not remove).
nf_tables counts a generation per committed transaction, whoever commits it (nft,
iptables-nft, Docker, a hand edit); the forwarder's netlink writer counts its own
commits. So when the generation has grown by exactly as many
commits as the forwarder made since a check that found the ruleset as planned, nothing
but learned elements (which the check never compares) has changed, and the listing
would find the same. Any other commit, a failed or uncertain read, a deep list check
due or `BACKSTOP_SECONDS` since the last listing, and the check lists as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dockwall.errors import DockwallError

Stamp = tuple[int, int]
"""(nf_tables generation, commits made by our own writer), read together."""

GENERATIONS = 1 << 32  # the kernel's counter is a u32
BACKSTOP_SECONDS = 30.0


def only_ours_since(then: Stamp, now: Stamp) -> bool:
    """Whether every commit between two stamps was one of our writer's."""
    generations = (now[0] - then[0]) % GENERATIONS
    return generations == now[1] - then[1]


@dataclass
class DriftGate:
    """`read` gives a stamp or raises (DockwallError, OSError): then it is not known."""

    read: Callable[[], Stamp] | None
    backstop: float = BACKSTOP_SECONDS
    verified: Stamp | None = None
    verified_at: float = 0.0

    def stamp(self) -> Stamp | None:
        """Read before the check lists anything, so a commit during it shows next time."""
        if self.read is None:
            return None
        try:
            return self.read()
        except (DockwallError, OSError):
            return None

    def unchanged(self, stamp: Stamp | None, now: float) -> bool:
        """Whether the listing can be skipped: nothing but our writes since a check that
        found the ruleset in force, and that check recent enough."""
        if stamp is None or self.verified is None or now - self.verified_at >= self.backstop:
            return False
        return only_ours_since(self.verified, stamp)

    def found_in_force(self, stamp: Stamp | None, now: float) -> None:
        """A full check read at `stamp` found nothing to repair."""
        self.verified = stamp
        self.verified_at = now

    def forget(self) -> None:
        """The firewall was written (a repair, a reconcile): the next check lists."""
        self.verified = None
