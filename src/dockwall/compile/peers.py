"""Addresses, named lists and `except:` of a rule as the IR's Allow fields, and the
named lists a ruleset uses as kernel sets.

`except` follows Kubernetes' ipBlock.except exactly: a peer matches when it is inside one
of the rule's addresses (CIDRs or lists) and inside none of the `except` entries. With
`from: [any]` every address except those; `except` never touches `from_containers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dockwall.compile.ir import AddressSet, Allow, Filter, PortMatch
from dockwall.compile.normalize import peers
from dockwall.errors import DockwallError, Location, PolicyError
from dockwall.model.state import Network
from dockwall.policy.listfile import ListContents
from dockwall.policy.model import Policy
from dockwall.policy.rules import EgressRule, IngressRule, Peer, list_names, only_networks


@dataclass(frozen=True)
class PeerSpec:
    """The Allow fields that say which remote addresses a rule covers."""

    peers: tuple[Network, ...] | None
    lists: tuple[str, ...] = ()
    excepts: tuple[Network, ...] = ()
    except_lists: tuple[str, ...] = ()


def peer_spec(given: tuple[Peer, ...] | None, carved: tuple[Peer, ...]) -> PeerSpec:
    """`[any]` absorbs lists; a rule naming only lists has no CIDR peers (an empty tuple)."""
    excepts = peers(only_networks(carved)) or ()
    except_lists = tuple(dict.fromkeys(list_names(carved)))
    if given is None:
        return PeerSpec(None, (), excepts, except_lists)
    cidrs = only_networks(given) or ()
    names = tuple(dict.fromkeys(list_names(given)))
    merged = peers(cidrs) if cidrs else ()
    if merged is None:
        names = ()
    return PeerSpec(merged, names, excepts, except_lists)


def with_peers(spec: PeerSpec, ports: tuple[PortMatch, ...] = (), original: bool = False) -> Allow:
    return Allow(
        peers=spec.peers,
        ports=ports,
        original=original,
        lists=spec.lists,
        excepts=spec.excepts,
        except_lists=spec.except_lists,
    )


def names_used(filters: Iterable[Filter | None]) -> list[str]:
    """Every list a filter names, in first-use order."""
    found: dict[str, None] = {}
    for flt in filters:
        for allow in flt.allows if flt else ():
            found.update(dict.fromkeys((*allow.lists, *allow.except_lists)))
    return list(found)


def address_set(name: str, contents: ListContents) -> AddressSet:
    return AddressSet(
        name=name,
        file=contents.file,
        digest=contents.digest,
        v4=contents.v4,
        v6=contents.v6,
        interval4=contents.interval4,
        interval6=contents.interval6,
        change=contents.change,
    )


def address_sets(
    names: Iterable[str], loaded: Mapping[str, ListContents]
) -> tuple[AddressSet, ...]:
    """The kernel sets of the lists the rules use; a list used but never read is a bug in
    the caller (the policy loader reads every list), said plainly rather than matched
    as empty."""
    found = []
    for name in sorted(set(names)):
        contents = loaded.get(name)
        if contents is None:
            raise DockwallError(f"list {name} is used but its file was not read")
        found.append(address_set(name, contents))
    return tuple(found)


def check_label_lists(
    rules: Iterable[IngressRule | EgressRule], policy: Policy, where: str
) -> None:
    """A label may name a list the policy defines, never a file (caps: labels.py)."""
    for rule in rules:
        for name in rule.named_lists:
            if name not in policy.lists:
                raise PolicyError(Location(where), "", f"list:{name} is not defined in the policy")
