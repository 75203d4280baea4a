"""Large address lists as ipset hash:net sets, so a rule's cost does not grow with them.

A set is named after its family and members (`dockwall-<16 hex of a SHA-256>`), so a
name always means the same contents, and a set is provably ours when its name is the
hash of what it holds (or one of our chains matches against it, should someone have
added to it): any other set, `dockwall-mine` included, is never touched. Changing a
list makes a new set, the iptables transaction switches the rule to it atomically, and
the old set is destroyed only after no rule uses it. Rollback is then just "put the old
rules back, destroy the new sets".
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dockwall.backends.base import Change
from dockwall.backends.iptables.detect import Family
from dockwall.errors import CommandError, DockwallError
from dockwall.model.state import Network
from dockwall.runner import Runner

THRESHOLD = 8
SET_PREFIX = "dockwall-"
TEMP_SUFFIX = "-t"
CREATE_ARGV = ("ipset", "-exist", "restore")
DESTROY_ARGV = ("ipset", "restore")
DEFAULT_MAXELEM = 65536
DESTROY_ATTEMPTS = 50
DESTROY_PAUSE = 0.1
OUR_NAME = re.compile(r"dockwall-[0-9a-f]{16}")


@dataclass(frozen=True)
class IpSet:
    """A set dockwall wants: members are normalized network texts, sorted and unique."""

    name: str
    family: Family
    members: tuple[str, ...]

    @property
    def kind(self) -> str:
        return f"hash:net family {ipset_family(self.family)}"

    def matches(self, live: LiveSet | None) -> bool:
        return live is not None and live.family == self.family and live.members == set(self.members)


@dataclass(frozen=True)
class LiveSet:
    family: Family
    members: frozenset[str]


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
        if OUR_NAME.fullmatch(name)
        and (name in referenced or name == set_name(found.family, sorted(found.members)))
    }
    taken = sorted((wanted & live.keys()) - mine.keys())
    if taken:
        raise DockwallError(
            f"ipset set {', '.join(taken)} exists but is not dockwall's (its name is not the "
            "hash of its contents); dockwall never touches it: rename or remove it"
        )
    return mine


def normalized(member: str) -> str:
    return str(ipaddress.ip_network(member, strict=False))


def parse_save(text: str) -> dict[str, LiveSet]:
    """dockwall's sets from `ipset save` output; every other set is ignored."""
    families: dict[str, Family] = {}
    members: dict[str, set[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or not words[1].startswith(SET_PREFIX):
            continue
        if words[0] == "create":
            kind = words[words.index("family") + 1] if "family" in words[:-1] else "inet"
            families[words[1]] = "ipv6" if kind == "inet6" else "ipv4"
            members.setdefault(words[1], set())
        elif words[0] == "add":
            members.setdefault(words[1], set()).add(normalized(words[2]))
    return {
        name: LiveSet(families.get(name, "ipv4"), frozenset(found))
        for name, found in members.items()
    }


def live_sets(runner: Runner) -> dict[str, LiveSet]:
    """Our sets in the kernel; none when ipset is not installed (then none can exist)."""
    try:
        result = runner.run(["ipset", "save"], check=False)
    except CommandError:
        return {}
    return parse_save(result.stdout) if result.returncode == 0 else {}


def create_script(sets: Sequence[IpSet], live: dict[str, LiveSet]) -> str:
    """Loads each set under its own name; one that exists (with other contents) is filled
    under a temporary name and swapped in, as a rule may be using it."""
    lines: list[str] = []
    for wanted in sets:
        maxelem = max(DEFAULT_MAXELEM, len(wanted.members))
        target = wanted.name + TEMP_SUFFIX if wanted.name in live else wanted.name
        lines += [f"create {target} {wanted.kind} maxelem {maxelem}", f"flush {target}"]
        lines += [f"add {target} {member}" for member in wanted.members]
        if target != wanted.name:
            lines += [f"swap {target} {wanted.name}", f"destroy {target}"]
    return "\n".join([*lines, ""])


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
        previous = old.members if old is not None else frozenset()
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
            s.family,
            "remove",
            f"ipset {name}",
            f"(set destroyed, {len(s.members)} entries)",
            leftover=True,
        )
        for name, s in stale.items()
    ]
    return before, after


def closest(wanted: IpSet, candidates: Sequence[LiveSet]) -> LiveSet | None:
    members = set(wanted.members)
    scored = [(len(members & c.members), c) for c in candidates if c.family == wanted.family]
    best = max(scored, key=lambda pair: pair[0], default=None)
    return best[1] if best is not None and best[0] > 0 else None
