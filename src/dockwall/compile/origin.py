"""Which policy entry denied a drop: short tags in the kernel, readable origins in the log.

The NFLOG prefix of a drop rule is all the kernel hands back with a logged packet, and
iptables caps it at 63 bytes, so it carries a tag rather than prose:
`dw:<direction>:<tag>`, where a tag is `+`-joined parts:

- `p14`: the container entry written at line 14 of the policy file (`c3` for
  `containers[3]` when the policy was not read from a file);
- `l.<key>`: the `dockwall.ingress`/`dockwall.egress` label of the container whose guard
  key (short id) is `<key>`;
- `h.<key>`: that container is held closed (conflicting entries);
- `d`: the defaults.

Decoding needs the policy file's name and the container names, which the agent has;
the tag itself stays stable across agent restarts and names nothing the kernel could
mangle (only letters, digits, `.`, `+`, `:`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dockwall.compile.ir import LogDirection
from dockwall.policy import ContainerEntry

PREFIX = "dw"
DIRECTION_CODES: dict[LogDirection, str] = {"ingress": "i", "egress": "e", "peers": "p"}
CODE_DIRECTIONS: dict[str, LogDirection] = {v: k for k, v in DIRECTION_CODES.items()}
DEFAULTS = "d"


def entry_tag(entry: ContainerEntry) -> str:
    location = entry.location
    if location is not None and location.line is not None:
        return f"p{location.line}"
    return f"c{entry.index if entry.index is not None else 0}"


def label_tag(key: str) -> str:
    return f"l.{key}"


def held_tag(key: str) -> str:
    return f"h.{key}"


def joined(*tags: str) -> str:
    return "+".join(dict.fromkeys(t for t in tags if t))


def log_prefix(direction: LogDirection, tag: str) -> str:
    return f"{PREFIX}:{DIRECTION_CODES[direction]}:{tag or DEFAULTS}"


@dataclass(frozen=True)
class Decoded:
    direction: LogDirection
    tag: str


def parse_prefix(prefix: str) -> Decoded | None:
    """None for a prefix that is not dockwall's (another tool logging to the group)."""
    parts = prefix.split(":", 2)
    if len(parts) != 3 or parts[0] != PREFIX or parts[1] not in CODE_DIRECTIONS:
        return None
    return Decoded(CODE_DIRECTIONS[parts[1]], parts[2])


def describe_tag(
    tag: str, direction: LogDirection, policy_name: str, name_of: Callable[[str], str]
) -> str:
    """`policy.yaml:14`, `label dockwall.egress on web`, `defaults`, joined by ` + `.

    `name_of` maps a guard key (a container id prefix) to the container's name."""
    label_key = "ingress" if direction == "ingress" else "egress"
    found: list[str] = []
    for part in tag.split("+"):
        if part == DEFAULTS or not part:
            found.append("defaults" if direction != "peers" else "defaults (peers: deny)")
        elif part.startswith("p") and part[1:].isdigit():
            found.append(f"{policy_name}:{part[1:]}")
        elif part.startswith("c") and part[1:].isdigit():
            found.append(f"containers[{part[1:]}]")
        elif part.startswith("l."):
            found.append(f"label dockwall.{label_key} on {name_of(part[2:])}")
        elif part.startswith("h."):
            found.append(f"held closed: conflicting entries for {name_of(part[2:])}")
        else:
            found.append(f"unknown tag {part!r}")
    return " + ".join(found)
