"""Large address lists as ipset hash:net sets, so a rule's cost does not grow with them.

A set is named after its family and members (`dockwall-<16 hex of a SHA-256>`), so a
name always means the same contents, and a set is provably ours when its name is the
hash of what it holds (or one of our chains matches against it, should someone have
added to it): any other set, `dockwall-mine` included, is never touched. Changing a
list makes a new set, the iptables transaction switches the rule to it atomically, and
the old set is destroyed only after no rule uses it. Rollback is then just "put the old
rules back, destroy the new sets". Named lists' sets (`dwl-NAME-v4`) keep their name and
change in place instead (`listsync`); reading sets back is `setread`'s.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dockwall.backends.base import Change
from dockwall.backends.iptables.detect import Family
from dockwall.backends.iptables.setread import (
    DEFAULT_HASHSIZE,
    DEFAULT_MAXELEM,
    SET_PREFIX,
    Header,
)
from dockwall.backends.transaction import Load
from dockwall.compile.ir import ListChange
from dockwall.errors import CommandError, DockwallError
from dockwall.model.state import Network
from dockwall.runner import Runner

THRESHOLD = 8
TEMP_SUFFIX = "-t"
CREATE_ARGV = ("ipset", "-exist", "restore")
DESTROY_ARGV = ("ipset", "restore")
LOAD_TIMEOUT = 60.0
LOAD_BYTES_PER_SECOND = 100_000
DESTROY_ATTEMPTS = 50
DESTROY_PAUSE = 0.1
OUR_NAME = re.compile(r"dockwall-[0-9a-f]{16}")
LIST_NAME = re.compile(r"dwl-[A-Za-z0-9_.-]{1,24}-v[46]")


@dataclass(frozen=True)
class IpSet:
    """A set dockwall wants: members are normalized network texts, sorted and unique.
    A named list's set (`listed`) carries its list file's digest."""

    name: str
    family: Family
    members: Sequence[str]
    listed: bool = False
    digest: str = ""
    change: ListChange | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return f"hash:net family {ipset_family(self.family)}"

    @property
    def maxelem(self) -> int:
        """Room to grow for a named list (a refill is needed only past it)."""
        if not self.listed:
            return max(DEFAULT_MAXELEM, len(self.members))
        return max(DEFAULT_MAXELEM, 1 << (2 * len(self.members)).bit_length())

    @property
    def hashsize(self) -> int:
        """Buckets for the members up front: a table the kernel finds full is doubled by
        rehashing every entry in it, some ten times over on the way to a million."""
        return max(DEFAULT_HASHSIZE, 1 << (len(self.members) // 2).bit_length())

    def create_line(self, target: str) -> str:
        size = f" hashsize {self.hashsize}" if self.hashsize > DEFAULT_HASHSIZE else ""
        return f"create {target} {self.kind}{size} maxelem {self.maxelem}\n"

    def matches(self, live: LiveSet | None) -> bool:
        return (
            live is not None
            and live.family == self.family
            and live.members is not None
            and live.members == frozenset(self.members)
        )


@dataclass(frozen=True)
class LiveSet:
    """One of our sets in the kernel. `members` is None when they were not read: a named
    list's set is known by its header (and the record of what was loaded into it)."""

    family: Family
    members: frozenset[str] | None
    maxelem: int = DEFAULT_MAXELEM
    count: int | None = None
    kind: str = "hash:net"

    @property
    def size(self) -> int:
        return len(self.members) if self.members is not None else self.count or 0


def live_sets(headers: dict[str, Header], members: dict[str, frozenset[str]]) -> dict[str, LiveSet]:
    """The sets as headers say, with the members of those that were read."""
    return {
        name: LiveSet(found.family, members.get(name), found.maxelem, found.count, found.kind)
        for name, found in headers.items()
    }


def ipset_family(family: Family) -> str:
    return "inet" if family == "ipv4" else "inet6"


def wants_set(networks: Sequence[Network]) -> bool:
    """More than THRESHOLD networks, and none is /0 (hash:net cannot hold it)."""
    return len(networks) > THRESHOLD and all(n.prefixlen > 0 for n in networks)


def set_name(family: Family, members: Iterable[str]) -> str:
    digest = hashlib.sha256("\n".join([family, *members]).encode()).hexdigest()[:16]
    return f"{SET_PREFIX}{digest}"


def set_for(family: Family, networks: Iterable[Network]) -> IpSet:
    members = tuple(sorted({str(n) for n in networks}))
    return IpSet(set_name(family, members), family, members)


def ours(live: dict[str, LiveSet], referenced: set[str], wanted: set[str]) -> dict[str, LiveSet]:
    """The live sets that are provably ours: named after their own contents, or matched
    by one of our chains. A set we need whose name someone else holds is refused."""
    mine = {
        name: found
        for name, found in live.items()
        if (OUR_NAME.fullmatch(name) and (name in referenced or named_for(name, found)))
        or (LIST_NAME.fullmatch(name) and name in referenced)
    }
    taken = sorted((wanted & live.keys()) - mine.keys())
    if taken:
        raise DockwallError(
            f"ipset set {', '.join(taken)} exists but is not dockwall's (its name is not the "
            "hash of its contents); dockwall never touches it: rename or remove it"
        )
    return mine


def named_for(name: str, found: LiveSet) -> bool:
    return found.members is not None and name == set_name(found.family, sorted(found.members))


def fill(target: str, members: Iterable[str]) -> str:
    """`add` lines, one join: a million of them render in a fraction of a second."""
    prefix = f"add {target} "
    text = f"\n{prefix}".join(members)
    return f"{prefix}{text}\n" if text else ""


def create_script(sets: Sequence[IpSet], live: dict[str, LiveSet]) -> str:
    """Loads each set under its own name; one that exists (with other contents) is filled
    under a temporary name and swapped in, as a rule may be using it."""
    return "".join(refill(wanted, wanted.name in live) for wanted in sets)


def refill(wanted: IpSet, exists: bool) -> str:
    """A set filled whole: created, or filled aside and swapped in when rules use it.
    The temporary set may be left from an interrupted run, hence the flush."""
    if not exists:
        return wanted.create_line(wanted.name) + fill(wanted.name, wanted.members)
    target = wanted.name + TEMP_SUFFIX
    return (
        wanted.create_line(target)
        + f"flush {target}\n"
        + fill(target, wanted.members)
        + f"swap {target} {wanted.name}\ndestroy {target}\n"
    )


def set_load(argv: tuple[str, ...], script: str) -> Load:
    """An `ipset restore` given time in proportion to its script: a million entries take
    seconds on an idle host and many more on a busy one, past a load's default minute."""
    return Load(argv, script, timeout=max(LOAD_TIMEOUT, len(script) / LOAD_BYTES_PER_SECOND))


def destroy_script(names: Iterable[str]) -> str:
    return "".join(f"destroy {name}\n" for name in names)


def destroy(runner: Runner, names: Sequence[str]) -> None:
    """Destroys those of `names` that exist. A set is briefly still in use right after the
    rule using it went away on some kernels, so this retries a bounded number of times."""
    failure: CommandError | None = None
    for _ in range(DESTROY_ATTEMPTS):
        present = [n for n in names if n in existing_names(runner)]
        if not present:
            return
        try:
            runner.run(list(DESTROY_ARGV), input=destroy_script(present))
            return
        except CommandError as exc:
            failure = exc
            time.sleep(DESTROY_PAUSE)
    raise DockwallError(
        f"the rules are in force, but ipset sets {', '.join(names)} could not be destroyed: "
        f"{failure}"
    )


@dataclass(frozen=True)
class DestroySets:
    """A transaction step: our sets that go once no rule names them (or that a failed
    apply created), destroyed with the retries of `destroy`."""

    names: tuple[str, ...]

    def run(self, runner: Runner) -> None:
        destroy(runner, self.names)


def existing_names(runner: Runner) -> set[str]:
    try:
        result = runner.run(["ipset", "list", "-n"], check=False)
    except CommandError:
        return set()
    return set(result.stdout.split()) if result.returncode == 0 else set()


def set_changes(
    create: Sequence[IpSet], stale: dict[str, LiveSet], live: dict[str, LiveSet]
) -> tuple[list[Change], list[Change]]:
    """(before, after) plan lines: each set to load with the members that differ from its
    live contents, or for a new set from the stale set of its family it most resembles
    (usually the one it replaces); then the stale sets that go."""
    before: list[Change] = []
    for wanted in create:
        where = f"ipset {wanted.name}"
        old = live.get(wanted.name) or closest(wanted, list(stale.values()))
        previous = old.members if old is not None and old.members is not None else frozenset()
        verb = "(set refilled" if wanted.name in live else "(new set"
        before.append(
            Change(
                wanted.family, "add", where, f"{verb} {wanted.kind}, {len(wanted.members)} entries)"
            )
        )
        before += [
            Change(wanted.family, "remove", where, m)
            for m in sorted(previous - set(wanted.members))
        ]
        before += [
            Change(wanted.family, "add", where, m) for m in wanted.members if m not in previous
        ]
    after = [
        Change(
            s.family, "remove", f"ipset {name}", f"(set destroyed, {s.size} entries)", leftover=True
        )
        for name, s in stale.items()
    ]
    return before, after


def closest(wanted: IpSet, candidates: Sequence[LiveSet]) -> LiveSet | None:
    members = set(wanted.members)
    scored = [
        (len(members & c.members), c)
        for c in candidates
        if c.family == wanted.family and c.members is not None
    ]
    best = max(scored, key=lambda pair: pair[0], default=None)
    return best[1] if best is not None and best[0] > 0 else None
