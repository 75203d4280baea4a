"""The interface every backend implements, so `apply` and `status` never care which runs.

A backend turns the IR into its own ruleset, compares it with what is live, and loads
the difference in one atomic transaction. Plans are data: `plan` prints them, `apply`
loads them, tests compare them, without touching the firewall in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from dockwall.backends.transaction import Transaction
from dockwall.compile.ir import Ruleset


@dataclass(frozen=True)
class Change:
    """One line of a plan's diff: a rule, chain, set element or hook added or removed.

    `leftover` marks removing something no rule uses any more (a set left behind by an
    interrupted apply): the ruleset is in force with or without it."""

    family: str
    op: Literal["add", "remove"]
    where: str
    text: str
    leftover: bool = False


@dataclass(frozen=True)
class Plan:
    backend: str
    changes: tuple[Change, ...] = ()
    transaction: Transaction = field(default=Transaction(), compare=False)

    @property
    def in_sync(self) -> bool:
        return not self.changes


@dataclass(frozen=True)
class RuleCounter:
    """Packets and bytes one of dockwall's rules has matched since it was loaded."""

    family: str
    where: str
    text: str
    packets: int
    bytes: int


class Backend(Protocol):
    name: str

    def plan(self, ruleset: Ruleset) -> Plan:
        """What must change so the live firewall matches `ruleset` exactly."""
        ...

    def plan_reset(self) -> Plan:
        """What must change to remove everything this backend ever added, and only that."""
        ...

    def apply(self, plan: Plan) -> None:
        """Walks the plan's transaction; each of its loads is atomic on its own family."""
        ...

    def counters(self) -> list[RuleCounter]: ...

    def installed(self) -> bool:
        """Whether any of this backend's rules are in force."""
        ...
