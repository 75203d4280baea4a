"""A plan's load as phases of steps, walked the same way for every backend.

Like firewalld's transaction (pre, rules, post and fail step lists), each phase is its
own list, so apply never has to guess from a program's name which step is which:

- `before`: run in order before any rule changes (create the sets new rules name);
- `rules`: the atomic loads, one per family, run side by side; each carries its undo
  (what was live when the plan was made), loaded when another load of the phase fails,
  so families never end up half-applied;
- `after`: run in order once every rule is in (destroy what no rule names any more);
- `fail`: run when `before` or `rules` failed (destroy what `before` created).

A step is anything that can run through the runner: a later "update a kernel set's
elements in place" or "carry dynamic set elements across the load" is one more kind of
step in one of these phases, not a new special case in apply.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from dockwall.runner import Runner


class Step(Protocol):
    def run(self, runner: Runner) -> None: ...


@dataclass(frozen=True)
class Load:
    """One program fed its input (iptables-restore, nft -f -, ipset restore).

    `undo` is input to the same program that puts back what was live when the plan was
    made; None when there is nothing to put back (or nothing that could be). `timeout`
    grows with the load: a million list elements take the kernel seconds, more on a
    busy host."""

    argv: tuple[str, ...]
    payload: str
    undo: str | None = None
    timeout: float = 60.0

    def run(self, runner: Runner) -> None:
        runner.run(list(self.argv), input=self.payload, timeout=self.timeout)

    def revert(self, runner: Runner) -> None:
        if self.undo is not None:
            runner.run(list(self.argv), input=self.undo, timeout=self.timeout)


@dataclass(frozen=True)
class Transaction:
    before: tuple[Step, ...] = ()
    rules: tuple[Load, ...] = ()
    after: tuple[Step, ...] = ()
    fail: tuple[Step, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.before or self.rules or self.after)

    def run(self, runner: Runner) -> None:
        try:
            for step in self.before:
                step.run(runner)
            if self.rules:
                load_side_by_side(runner, self.rules)
        except Exception:
            for step in self.fail:
                step.run(runner)
            raise
        for step in self.after:
            step.run(runner)


def load_side_by_side(runner: Runner, loads: tuple[Load, ...]) -> None:
    """Every load at once (on the agent's path every millisecond counts); if one fails,
    the ones that went in are put back, then the first failure is raised."""
    if len(loads) == 1:
        loads[0].run(runner)
        return
    with ThreadPoolExecutor(max_workers=len(loads)) as pool:
        running = [pool.submit(load.run, runner) for load in loads]
    failed = [exc for future in running if (exc := future.exception()) is not None]
    if not failed:
        return
    for load, future in zip(loads, running, strict=True):
        if future.exception() is None:
            load.revert(runner)
    raise failed[0]
