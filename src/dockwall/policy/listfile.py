"""Address list files: one address or CIDR per line, comments, blank lines, both families.

Comments start at `#` or `;` (Spamhaus DROP writes `1.10.16.0/20 ; SBL256894` and
heads its file with `;` lines), anywhere on a line; a UTF-8 byte order mark (files
saved on Windows) and CRLF line ends are accepted.

Threat feeds and country ranges hold 100,000 to 1,000,000 lines and change hourly, so
this is a plain line reader, never the YAML machinery: each line is parsed with the C
address parsers (`inet_pton`) into integers, which also make the canonical form cheap.
The result is the set the kernel must hold, in its own spelling: entries contained in
another are dropped (an nft interval set refuses overlapping elements, and deleting one
later would fail), what remains is sorted by address. A bad line is an error naming
`file:line`, or, with `on_error: skip` (feeds are messy), left out with a warning.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dockwall.errors import DockwallError
from dockwall.policy.hostlines import HostLines, HostsChange, hosts_changed, verbatim_hosts
from dockwall.policy.listchange import ListChange, comment_cut, hosts_read_against

OnError = Literal["fail", "skip"]
MAX_SHOWN_WARNINGS = 5
MAX_LIST_BYTES = 256 * 1024 * 1024
BITS = {4: 32, 6: 128}
FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
MAPPED_START = 0xFFFF << 32
MAPPED_END = MAPPED_START | 0xFFFFFFFF


class ListFileError(DockwallError):
    """A bad list file: names `file:line`; exit code 2 like any other bad input."""

    exit_code = 2


@dataclass(frozen=True)
class ListContents:
    """A list file read and canonicalized.

    `v4`/`v6` are element texts as nft and ipset print them (a host bare, a network as
    address/length), disjoint and sorted; `interval4`/`interval6` say whether any element
    is a network (the kernel set then needs ranges). `digest` is the file's SHA-256,
    which lets a plan in sync skip comparing a million elements."""

    file: str
    v4: Sequence[str]
    v6: Sequence[str]
    interval4: bool
    interval6: bool
    digest: str
    lines: int
    skipped: int = 0
    warnings: tuple[str, ...] = ()
    change: ListChange | None = None

    @property
    def size(self) -> int:
        return len(self.v4) + len(self.v6)


class BadEntry(ValueError):
    """One line that is not an address or CIDR; the message is for the user."""


def parse_entry(text: str) -> tuple[int, int, int]:
    """(family, first address as an integer, prefix length) of `192.0.2.0/24`, `2001:db8::1`.

    Host bits set, scope ids, IPv4-mapped IPv6 and /0 are refused: the writer meant
    something else, and in a firewall a guess opens a hole (a /0 is `any` in the policy).
    """
    address, slash, length_text = text.partition("/")
    family = 6 if ":" in address else 4
    try:
        value = int.from_bytes(socket.inet_pton(FAMILY[family], address), "big")
    except OSError:
        raise BadEntry(
            f"{text!r} is not an IP address or CIDR (like 192.0.2.0/24 or 2001:db8::/32)"
        ) from None
    bits = BITS[family]
    length = bits
    if slash:
        if not length_text.isdigit() or len(length_text) > 3 or int(length_text) > bits:
            raise BadEntry(f"{text!r} has a bad prefix length (0 to {bits})")
        length = int(length_text)
    if length == 0:
        raise BadEntry(f"{text!r} is every address: write `any` in the policy instead")
    if value & ((1 << (bits - length)) - 1):
        raise BadEntry(f"{text!r} has host bits set")
    if family == 6 and MAPPED_START <= value <= MAPPED_END:
        raise BadEntry(f"{text!r} is an IPv4-mapped address: write the IPv4 address")
    return family, value, length


def element_text(family: int, value: int, length: int) -> str:
    address = socket.inet_ntop(FAMILY[family], value.to_bytes(BITS[family] // 8, "big"))
    return address if length == BITS[family] else f"{address}/{length}"


def disjoint(entries: Iterable[tuple[int, int]], bits: int) -> list[tuple[int, int]]:
    """(start, length) entries without those inside another, sorted by address. Prefixes
    never partly overlap, so covering is the only overlap there is."""
    ordered = sorted(entries, key=lambda entry: (entry[0], entry[1]))
    kept: list[tuple[int, int]] = []
    end = -1
    for start, length in ordered:
        if start <= end:
            continue
        kept.append((start, length))
        end = start + (1 << (bits - length)) - 1
    return kept


def parse_lines(lines: Iterable[str], source: str, on_error: OnError) -> ListContents:
    """The canonical contents of the lines of file `source`.

    Bare IPv4 addresses, most of any feed, take a fast path: `inet_pton` accepts only
    the canonical dotted quad (no leading zeros), so the text itself is the element.
    Everything else goes through parse_entry."""
    hosts4: dict[str, None] = {}
    found: dict[int, set[tuple[int, int]]] = {4: set(), 6: set()}
    bad: list[tuple[int, str]] = []
    count = 0
    pton = socket.inet_pton
    inet = socket.AF_INET
    for count, raw in enumerate(lines, 1):
        text = comment_cut(raw).strip() if "#" in raw or ";" in raw else raw.strip()
        if not text:
            continue
        if "/" not in text and ":" not in text:
            try:
                pton(inet, text)
            except OSError:
                pass
            else:
                hosts4[text] = None
                continue
        try:
            family, value, length = parse_entry(text)
        except BadEntry as exc:
            if on_error == "fail":
                raise ListFileError(
                    f"{source}:{count}: {exc} (or set on_error: skip on the list)"
                ) from None
            bad.append((count, str(exc)))
            continue
        found[family].add((value, length))
    v4 = family_elements(4, found[4], hosts4)
    v6 = family_elements(6, found[6], {})
    return ListContents(
        file=source,
        v4=v4,
        v6=v6,
        interval4=bool(found[4]) and any(n != 32 for _, n in found[4]),
        interval6=bool(found[6]) and any(n != 128 for _, n in found[6]),
        digest="",
        lines=count,
        skipped=len(bad),
        warnings=skip_warnings(source, bad),
    )


def family_elements(
    family: int, entries: set[tuple[int, int]], hosts: dict[str, None]
) -> tuple[str, ...]:
    """Hosts alone are disjoint once unique; with networks, whatever another covers goes."""
    if not entries:
        return tuple(hosts)
    for text in hosts:
        entries.add((int.from_bytes(socket.inet_pton(FAMILY[family], text), "big"), BITS[family]))
    return tuple(element_text(family, s, n) for s, n in disjoint(entries, BITS[family]))


def skip_warnings(source: str, bad: list[tuple[int, str]]) -> tuple[str, ...]:
    shown = [f"{source}:{number}: {message}; line skipped" for number, message in bad]
    if len(bad) > MAX_SHOWN_WARNINGS:
        shown = [*shown[:MAX_SHOWN_WARNINGS], f"{source}: {len(bad)} bad lines skipped in all"]
    return tuple(shown)


KnownContents = Callable[[str], "ListContents | None"]


def read_list_file(
    path: Path,
    on_error: OnError = "fail",
    known: KnownContents | None = None,
    previous: ListContents | None = None,
) -> ListContents:
    """The list in the file at `path`; an unreadable or non-UTF-8 file is an error naming it.

    `known` answers, for the file's digest, contents read before (the state directory
    keeps those of the last apply): a file unchanged since then is hashed, not parsed,
    which is what keeps a plan of a million-entry list in sync quick. `previous` is the
    list as last read (by the agent) or applied: an IPv4 host list changed since is
    read against it, as bytes when both files are exactly their hosts (`hostlines`),
    else with set operations (`listchange`), and the result then carries the change
    from it, which the backends load without comparing the lists again."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise ListFileError(f"{path}: cannot read the list: {exc.strerror or exc}") from None
    if len(data) > MAX_LIST_BYTES:
        raise ListFileError(f"{path}: larger than {MAX_LIST_BYTES} bytes")
    digest = hashlib.sha256(data).hexdigest()
    remembered = known(digest) if known is not None else None
    if remembered is not None:
        return ListContents(**{**remembered.__dict__, "file": str(path), "digest": digest})
    fast = bytes_changed(previous, digest, data) if previous is not None else None
    if fast is not None:
        return hosts_contents(path, fast.elements, digest, fast.change)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ListFileError(f"{path}:{line}: not UTF-8 text") from None
    lines = text.splitlines()
    quick = None
    if previous is not None and previous.digest and previous.digest != digest:
        quick = hosts_read_against(lines, previous, previous.digest)
    if quick is not None:
        verbatim = verbatim_hosts(data, quick.v4)
        return hosts_contents(path, verbatim or quick.v4, digest, quick.change, len(lines))
    contents = parse_lines(lines, str(path), on_error)
    return ListContents(**{**contents.__dict__, "digest": digest, "v4": kept_v4(contents, data)})


def bytes_changed(previous: ListContents, digest: str, data: bytes) -> HostsChange | None:
    """The change from a previous file that was exactly its IPv4 hosts, read as bytes."""
    before = previous.v4
    if not isinstance(before, HostLines) or previous.v6 or previous.digest in ("", digest):
        return None
    return hosts_changed(before, data, previous.digest)


def hosts_contents(
    path: Path, v4: Sequence[str], digest: str, change: ListChange, lines: int = -1
) -> ListContents:
    return ListContents(
        file=str(path),
        v4=v4,
        v6=(),
        interval4=False,
        interval6=False,
        digest=digest,
        lines=len(v4) if lines < 0 else lines,
        change=change,
    )


def kept_v4(contents: ListContents, data: bytes) -> Sequence[str]:
    """The IPv4 elements, as the file's own bytes when they are exactly those (HostLines:
    the next version of the file is then read against them as bytes)."""
    pure = not contents.v6 and not contents.interval4 and contents.lines == len(contents.v4)
    verbatim = verbatim_hosts(data, contents.v4) if pure else None
    return verbatim or contents.v4
