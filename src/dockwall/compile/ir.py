"""The firewall IR: what must be true, independent of address family and backend.

The compiler resolves the policy against the host's state into this IR; each backend
renders it (iptables chains, an nftables table) and each is checked against the same
real packets. Semantics every backend must keep:

- dockwall only restricts. Allowed traffic is handed back to Docker's own rules, never
  accepted outright, so dockwall cannot open what Docker closes.
- Replies and established connections always pass; filters act on new connections.
- Ingress is traffic forwarded to a container from outside its bridge. Egress is traffic
  from a container leaving its bridge, forwarded or addressed to the host itself.
- A Filter allows what one of its rules matches and drops (or, with `reject`, refuses:
  TCP reset, ICMP admin-prohibited) every other new connection.
- An Allow's peers are its CIDRs and named lists together, minus its `except` CIDRs and
  lists, exactly Kubernetes' ipBlock `cidr` minus `except`. A named list is one kernel
  set per family (`Ruleset.lists`), shared by every rule naming it, so its elements can
  be updated in place without touching any rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from dockwall.model.state import Address, Bridge, Network
from dockwall.policy.listchange import ListChange as ListChange  # noqa: PLC0414 - the IR re-exports it to the backends

Proto = Literal["tcp", "udp", "icmp"]

PLAIN_INTERFACE = re.compile(r"[A-Za-z0-9_.@-]{0,14}[A-Za-z0-9_.@]")


def plain_interface(name: str) -> bool:
    """Whether an interface name can be written into rules as it is, in both backends.

    The kernel allows almost any byte in a name (not `/`, `:` or whitespace, at most 15),
    and Docker passes `com.docker.network.bridge.name` on unchecked. Quotes and
    backslashes break iptables-restore and nft scripts, a trailing `+` is an iptables
    wildcard and a trailing `*` an nft one. Names outside this plain set are never
    written: traffic behind them is matched by address, or held by the defaults as an
    interface dockwall does not know.
    """
    return PLAIN_INTERFACE.fullmatch(name) is not None


@dataclass(frozen=True)
class PortMatch:
    """A protocol with an optional port range; icmp never has ports (ICMPv6 in IPv6)."""

    proto: Proto
    first: int | None = None
    last: int | None = None


@dataclass(frozen=True)
class Allow:
    """One allowed kind of new connection. Empty `ports` means any protocol and port.

    `peers` is the remote side (sources for ingress, destinations for egress); None is
    any address of either family. `fqdns` (with `peers` empty) are domain-name patterns:
    the peer is any address the DNS forwarder learned for one of them, held in a kernel
    set per pattern and family that the forwarder fills. `original` matches the port the
    client dialled (the published host port, via conntrack's original tuple) instead of
    the packet's port.
    """

    peers: tuple[Network, ...] | None = None
    ports: tuple[PortMatch, ...] = ()
    original: bool = False
    fqdns: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    excepts: tuple[Network, ...] = ()
    except_lists: tuple[str, ...] = ()

    @property
    def carved(self) -> bool:
        """Whether `except` takes anything out of the peers."""
        return bool(self.excepts or self.except_lists)


@dataclass(frozen=True)
class Filter:
    """Allow what a rule matches, drop (or reject) every other new connection.

    `tag` names the policy entry that speaks for the drop (see compile/origin.py); it
    travels into the kernel as the NFLOG prefix, so a logged drop maps back to the
    line of the policy, the label or the defaults that denied it. It says where a rule
    came from, not what it allows, so it takes no part in comparing filters.
    """

    allows: tuple[Allow, ...] = ()
    reject: bool = False
    tag: str = field(default="", compare=False)


@dataclass(frozen=True)
class AddressSet:
    """A named list as the kernel holds it: element texts per family (a host bare, a
    network as address/length), disjoint, and whether a family needs ranges. `digest`
    is the list file's SHA-256 when loaded: a plan compares it, not a million elements.
    `change`: the difference from the list's previous contents found while reading the
    file (ListChange), never saved with the state and not part of comparisons.
    """

    name: str
    file: str
    digest: str
    v4: Sequence[str] = ()
    v6: Sequence[str] = ()
    interval4: bool = False
    interval6: bool = False
    change: ListChange | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Elements as tuples whatever came in (a state file's JSON gives lists), so
        rulesets stay hashable; other sequences (the state directory's lazily read
        StoredElements) are kept as they are."""
        for name in ("v4", "v6"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def elements(self, family: int) -> Sequence[str]:
        return self.v4 if family == 4 else self.v6

    def interval(self, family: int) -> bool:
        return self.interval4 if family == 4 else self.interval6


@dataclass(frozen=True)
class LogLimit:
    """One direction's kernel bucket for drop records: `count` per `unit`, bursts up to
    `burst`. The unit is the largest one in which the count is whole (60/minute is
    1/second), which is how both iptables-save and nft print a rate back."""

    count: int
    unit: Literal["second", "minute", "hour", "day"]
    burst: int


@dataclass(frozen=True)
class DropLog:
    """How drops of new connections are logged: NFLOG group, bytes of each packet copied
    (`snaplen`, enough for the headers), and a bucket per direction (None: not logged).
    Rule counters still count every drop; the log is a rate-limited sample of them."""

    group: int
    ingress: LogLimit | None
    egress: LogLimit | None
    peers: LogLimit | None
    snaplen: int = 128

    def limit(self, direction: LogDirection) -> LogLimit | None:
        return {"ingress": self.ingress, "egress": self.egress, "peers": self.peers}[direction]


LogDirection = Literal["ingress", "egress", "peers"]


@dataclass(frozen=True)
class Endpoint:
    """A container address and the host-side bridge interface it sits behind."""

    interface: str
    address: Address


@dataclass(frozen=True)
class Guard:
    """One container's filters. None means that direction is not restricted."""

    key: str
    name: str
    origin: str
    endpoints: tuple[Endpoint, ...]
    ingress: Filter | None
    egress: Filter | None


@dataclass(frozen=True)
class PeerAllow:
    """One container may open connections to another on the bridge they share.

    Only consulted when peers are isolated: then traffic between containers on one
    bridge is dropped unless a PeerAllow names both addresses (and the port, if any).
    """

    source: Address
    destination: Address
    ports: tuple[PortMatch, ...] = ()


@dataclass(frozen=True)
class DnsClient:
    """A container address whose DNS goes through the forwarder: the patterns its egress
    rules name, and whether it may resolve only those (`restrict`, against tunnelling)."""

    address: Address
    patterns: tuple[str, ...]
    restrict: bool = False


@dataclass(frozen=True)
class Dns:
    """Egress by name. Clients' DNS (udp and tcp 53, to any address) is redirected to the
    forwarder on `port` of the host and their DNS over TLS (853) is dropped, so they
    cannot resolve around it; the forwarder asks `upstreams` and puts the addresses of
    answers for `patterns` into the sets the egress rules match, each for
    clamp(TTL, min_ttl, max_ttl) seconds."""

    port: int
    min_ttl: int
    max_ttl: int
    upstreams: tuple[str, ...]
    clients: tuple[DnsClient, ...]

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(sorted({p for c in self.clients for p in c.patterns}))

    def lifetime(self, ttl: int) -> int:
        return max(self.min_ttl, min(ttl, self.max_ttl))


@dataclass(frozen=True)
class Ruleset:
    """Everything dockwall wants in force on one host.

    The defaults apply to every address on a known bridge that no guard covers, so a
    container that starts before dockwall knows it is already held by them (fail-closed).
    `host_interfaces` are the host's own interfaces (not Docker bridges, not bridge
    ports) when dockwall looked: forwarded traffic to or from any other interface (a
    Docker network created later, whatever its bridge is called) is held by the
    defaults. None (never looked, e.g. a ruleset saved by an older version) falls back
    to holding bridges named br-*. `dns` is None when no container is governed by name.
    """

    bridges: tuple[Bridge, ...]
    guards: tuple[Guard, ...]
    default_ingress: Filter | None
    default_egress: Filter | None
    isolate_peers: bool = False
    peers: tuple[PeerAllow, ...] = ()
    host_interfaces: tuple[str, ...] | None = None
    dns: Dns | None = None
    lists: tuple[AddressSet, ...] = ()
    log: DropLog | None = None

    @property
    def known_bridges(self) -> tuple[Bridge, ...]:
        """The bridges the backends name in rules (plain names only)."""
        return tuple(b for b in self.bridges if plain_interface(b.interface))

    @property
    def plain_host_interfaces(self) -> tuple[str, ...] | None:
        if self.host_interfaces is None:
            return None
        return tuple(i for i in self.host_interfaces if plain_interface(i))
