"""Reading dockwall's ipset sets back, without reading a million members to do it.

`ipset list -t` prints every set's header (type, family, hashsize, maxelem, number of
entries) and no member, at the same cost for a set of ten entries or ten million. The
members are read only of the sets that need them, in one `ipset restore` of `save NAME`
lines: the content-named `dockwall-<hash>` sets (proving one ours means hashing what it
holds; they are peer lists, small by nature), and a named list's set only when its
header does not match the record of what was loaded into it (or a deep check is asked
for). A plan, an apply, the agent's drift check and `status` thus never read a big
list's members; `explain` and `audit` read the host's sets whole, as they must.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from dockwall.backends.iptables.detect import Family
from dockwall.errors import CommandError
from dockwall.runner import Runner

SET_PREFIX = "dockwall-"
LIST_PREFIX = "dwl-"
DEFAULT_MAXELEM = 65536
DEFAULT_HASHSIZE = 1024
READ_TIMEOUT = 600.0


@dataclass(frozen=True)
class Header:
    """What `ipset list -t` says of a set; `count` is None where ipset prints none."""

    kind: str
    family: Family
    hashsize: int = DEFAULT_HASHSIZE
    maxelem: int = DEFAULT_MAXELEM
    count: int | None = None


def is_ours(name: str) -> bool:
    return name.startswith((SET_PREFIX, LIST_PREFIX))


def header_words(text: str) -> dict[str, str]:
    """`family inet hashsize 1024 maxelem 65536 ...` as option -> value."""
    words = text.split()
    return dict(zip(words[::2], words[1::2], strict=False))


def header_blocks(text: str) -> list[dict[str, str]]:
    """`ipset list -t` as one `key: value` dict per set (each starts with `Name:`)."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key == "Name":
            blocks.append({})
        if sep and blocks:
            blocks[-1][key] = value.strip()
    return blocks


def parse_headers(text: str) -> dict[str, Header]:
    """Our sets' headers from `ipset list -t`; every other set is skipped."""
    found: dict[str, Header] = {}
    for fields in header_blocks(text):
        name = fields["Name"]
        if not is_ours(name) or "Type" not in fields:
            continue
        options = header_words(fields.get("Header", ""))
        count = fields.get("Number of entries", "")
        found[name] = Header(
            fields["Type"],
            "ipv6" if options.get("family") == "inet6" else "ipv4",
            int(options.get("hashsize", DEFAULT_HASHSIZE)),
            int(options.get("maxelem", DEFAULT_MAXELEM)),
            int(count) if count.isdigit() else None,
        )
    return found


def read_headers(runner: Runner) -> dict[str, Header]:
    """Our sets in the kernel; none when ipset is not installed (then none can exist)."""
    try:
        result = runner.run(["ipset", "list", "-t"], check=False, timeout=READ_TIMEOUT)
    except CommandError:
        return {}
    return parse_headers(result.stdout) if result.returncode == 0 else {}


def normalized(member: str) -> str:
    return str(ipaddress.ip_network(member, strict=False))


def parse_members(text: str) -> dict[str, frozenset[str]]:
    """The members of our sets in `ipset save` text: a content-named set's normalized
    (it is compared with rendered networks), a named list's as ipset prints them, which
    is the list's own spelling already (a host bare, a network as address/length)."""
    members: dict[str, set[str]] = {}
    for line in text.splitlines():
        words = line.split(" ", 3)
        if len(words) < 2 or not is_ours(words[1]):
            continue
        if words[0] == "create":
            members.setdefault(words[1], set())
        elif words[0] == "add" and len(words) > 2:
            listed = words[1].startswith(LIST_PREFIX)
            member = words[2].rstrip() if listed else normalized(words[2])
            members.setdefault(words[1], set()).add(member)
    return {name: frozenset(found) for name, found in members.items()}


def read_members(runner: Runner, names: Iterable[str]) -> dict[str, frozenset[str]]:
    """The members of just these sets, in one process; a set that vanished since its
    header was read (or an ipset whose restore cannot save) falls back to one whole
    `ipset save`, which is what every read cost before."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    batch = "".join(f"save {name}\n" for name in wanted)
    try:
        result = runner.run(["ipset", "restore"], input=batch, check=False, timeout=READ_TIMEOUT)
        if result.returncode != 0:
            result = runner.run(["ipset", "save"], check=False, timeout=READ_TIMEOUT)
    except CommandError:
        return {}
    if result.returncode != 0:
        return {}
    found = parse_members(result.stdout)
    return {name: found[name] for name in wanted if name in found}
