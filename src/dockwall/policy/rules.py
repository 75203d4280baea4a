"""The rules of a policy: ports, address lists, container selectors and directions.

Everything is normalized on the way in (port lists, `any` as None, single values as
one-item tuples) so that the code which turns a policy into firewall rules never has to
interpret the YAML spelling again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import ValidationInfo, field_validator, model_validator

from dockwall.policy.base import MappingModel, Model, from_yaml
from dockwall.policy.fields import (
    ANY,
    Network,
    Protocol,
    SpecError,
    check_name,
    format_port_range,
    not_mapped,
    parse_label_selector,
    parse_network,
    parse_port_range,
)
from dockwall.policy.fqdn import patterns
from dockwall.policy.problems import did_you_mean, fail, shown

__all__ = [
    "ComposeMatch",
    "ContainerSelector",
    "DirectionPolicy",
    "EgressPolicy",
    "EgressRule",
    "IngressPolicy",
    "IngressRule",
    "ListRef",
    "Network",
    "PortRange",
    "Protocol",
    "addresses",
]

MATCHERS = ("name", "compose", "label", "service", "stack")
LIST_PREFIX = "list:"
SWARM_MATCHERS = ("service", "stack")
OVERLAY_PEERS = (
    "traffic between Swarm tasks travels inside the overlay network's VXLAN tunnel and never "
    "meets the host's forward path, so no host firewall can enforce it"
)
VERDICTS = ("allow", "deny")

T = TypeVar("T")


class PortRange(Model):
    """One port or an inclusive range for tcp/udp; for icmp, all of ICMP and ICMPv6."""

    proto: Protocol
    first: int | None = None
    last: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        if isinstance(data, str):
            proto, first, last = _spec(parse_port_range, data)
            return {"proto": proto, "first": first, "last": last}
        if from_yaml(info):
            raise fail(f"expected a port like 8080/tcp, 1000-2000/udp or icmp, got {shown(data)}")
        if isinstance(data, dict) and data.get("last") is None:
            return {**data, "last": data.get("first")}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.proto == "icmp":
            if self.first is not None or self.last is not None:
                raise fail("icmp has no ports")
        else:
            _spec(parse_port_range, str(self))
        return self

    def __str__(self) -> str:
        return format_port_range(self.proto, self.first, self.last)


def _spec(parse: Callable[[str], T], text: str) -> T:
    """Runs a string parser from fields.py, turning its error into a validation error."""
    try:
        return parse(text)
    except SpecError as exc:
        raise fail(str(exc)) from None


class ListRef(Model):
    """`list:NAME` where addresses go: the named list of the policy's `lists`."""

    name: str

    def __str__(self) -> str:
        return f"{LIST_PREFIX}{self.name}"


Peer = Network | ListRef


def addresses(value: Any, *, lists: bool = False) -> tuple[Peer, ...] | None:
    """A list of CIDRs (and `list:NAME` where `lists`), or None for `[any]`; an empty
    list would match nothing, so it is refused rather than read as either extreme."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        hint = f"; write [{value}]" if isinstance(value, str) and len(value) < 60 else ""
        raise fail(f"expected a list of CIDRs or [any], got {shown(value)}{hint}")
    if not value:
        raise fail("is empty: list CIDRs, or write [any] for every address")
    if ANY in value:
        if len(value) > 1:
            raise fail(
                "any already covers every address: remove it or the other entries",
                at=(value.index(ANY),),
            )
        return None
    return tuple(_address(item, index, lists) for index, item in enumerate(value))


def networks(value: Any) -> tuple[Network, ...] | None:
    """Addresses where a named list cannot go (the label caps)."""
    found = addresses(value)
    return None if found is None else tuple(n for n in found if not isinstance(n, ListRef))


def excepts(value: Any) -> tuple[Peer, ...]:
    """`except:` entries: CIDRs and lists carved out of the rule's addresses."""
    if isinstance(value, list | tuple) and ANY in value:
        raise fail(
            "except: any would leave nothing: remove the rule instead", at=(value.index(ANY),)
        )
    found = addresses(value, lists=True)
    return found or ()


def _address(item: Any, index: int, lists: bool) -> Peer:
    if isinstance(item, ListRef) and lists:
        return item
    if isinstance(item, str) and item.startswith(LIST_PREFIX):
        name = item[len(LIST_PREFIX) :]
        if not lists:
            raise fail("a named list cannot be used here, only addresses", at=(index,))
        try:
            check_name(name, "list name")
        except SpecError as exc:
            raise fail(str(exc), at=(index,)) from None
        return ListRef(name=name)
    if not isinstance(item, str | ipaddress.IPv4Network | ipaddress.IPv6Network):
        raise fail(f"expected a CIDR like 192.0.2.0/24, got {shown(item)}", at=(index,))
    try:
        return parse_network(item) if isinstance(item, str) else not_mapped(str(item), item)
    except SpecError as exc:
        raise fail(str(exc), at=(index,)) from None


def only_networks(found: tuple[Peer, ...] | None) -> tuple[Network, ...] | None:
    if found is None:
        return None
    return tuple(p for p in found if not isinstance(p, ListRef))


def list_names(found: tuple[Peer, ...] | None) -> tuple[str, ...]:
    return tuple(p.name for p in found or () if isinstance(p, ListRef))


def _port_list(value: Any, info: ValidationInfo) -> Any:
    """Port lists; `ports: []` in YAML is refused as ambiguous (none, or every port?)."""
    if from_yaml(info) and value == []:
        raise fail("is empty: leave it out to mean every port")
    return value


class ComposeMatch(MappingModel):
    """Containers of a compose project, or of one service in it."""

    project: str
    service: str | None = None

    @field_validator("project", "service", mode="before")
    @classmethod
    def _names(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise fail(f"expected a name, got {shown(value)}")
        return _spec(lambda text: check_name(text, f"compose {info.field_name}"), value)


class ContainerSelector(MappingModel):
    """Which containers are meant: by name, by compose project (and service), by label,
    or by Swarm service or stack (the labels Swarm sets on every task's container)."""

    name: str | None = None
    compose: ComposeMatch | None = None
    label: tuple[str, str] | None = None
    service: str | None = None
    stack: str | None = None

    @classmethod
    def _check_yaml(cls, data: dict[str, Any]) -> None:
        given = [key for key in data if key in MATCHERS]
        if not given:
            raise fail(
                "needs one of name, compose, label, service or stack to say which containers "
                "it is for"
            )
        if len(given) > 1:
            raise fail(
                f"give only one of name, compose, label, service or stack (this entry has "
                f"{given[0]} and {given[1]})",
                at=(given[1],),
                on_key=True,
            )

    @field_validator("name", "service", "stack", mode="before")
    @classmethod
    def _name(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        what = {"name": "container name", "service": "Swarm service name"}.get(
            str(info.field_name), "Swarm stack name"
        )
        if not isinstance(value, str):
            raise fail(f"expected a {what}, got {shown(value)}")
        return _spec(lambda text: check_name(text, what), value)

    @field_validator("label", mode="before")
    @classmethod
    def _label(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return _spec(parse_label_selector, value)
        if from_yaml(info):
            raise fail(f"expected key=value, got {shown(value)}")
        return value

    @model_validator(mode="after")
    def _one_matcher(self) -> Self:
        chosen = (self.name, self.compose, self.label, self.service, self.stack)
        if sum(matcher is not None for matcher in chosen) != 1:
            raise fail("needs exactly one of name, compose, label, service or stack")
        return self

    @property
    def swarm(self) -> bool:
        """Whether it selects Swarm tasks, whose peers sit on overlay networks."""
        return self.service is not None or self.stack is not None

    def describe(self) -> str:
        """The matcher as the user would write it: `name=web`, `compose=shop/worker`."""
        if self.compose is not None:
            service = f"/{self.compose.service}" if self.compose.service else ""
            return f"compose={self.compose.project}{service}"
        if self.label is not None:
            return f"label={self.label[0]}={self.label[1]}"
        if self.service is not None:
            return f"service={self.service}"
        if self.stack is not None:
            return f"stack={self.stack}"
        return f"name={self.name}"


def _selectors(value: Any) -> Any:
    """A plain string in a container list is a name: `from_containers: [web]`."""
    if isinstance(value, list):
        return [{"name": item} if isinstance(item, str) else item for item in value]
    return value


def no_swarm_peers(selectors: tuple[ContainerSelector, ...], key: str) -> None:
    """Refused rather than compiled into rules that would never see a packet."""
    for index, selector in enumerate(selectors):
        if selector.swarm:
            raise fail(
                f"{selector.describe()} cannot be enforced: {OVERLAY_PEERS}",
                at=(key, index),
            )


class IngressRule(MappingModel):
    """Who may connect to a container's published ports.

    `host_ports` are the published ports on the host, `container_ports` the ports inside
    the container they lead to; a rule naming neither covers every published port.
    """

    _renames: ClassVar[Mapping[str, tuple[str, bool]]] = {
        "port": ("host_ports", True),
        "ports": ("host_ports", False),
        "container_port": ("container_ports", True),
        "container_ports": ("container_ports", False),
        "from": ("sources", False),
        "from_containers": ("from_containers", False),
        "except": ("excepts", False),
    }

    host_ports: tuple[PortRange, ...] = ()
    container_ports: tuple[PortRange, ...] = ()
    sources: tuple[Peer, ...] | None = None
    from_containers: tuple[ContainerSelector, ...] = ()
    excepts: tuple[Peer, ...] = ()

    @field_validator("from_containers", mode="before")
    @classmethod
    def _from_containers(cls, value: Any) -> Any:
        return _selectors(value)

    @model_validator(mode="after")
    def _enforceable(self) -> Self:
        no_swarm_peers(self.from_containers, "from_containers")
        return self

    @property
    def peer_sources(self) -> tuple[Peer, ...] | None:
        """Sources given as addresses and lists; a rule naming only containers admits none."""
        if self.from_containers and "sources" not in self.model_fields_set:
            return ()
        return self.sources

    @property
    def cidr_sources(self) -> tuple[Network, ...] | None:
        """The CIDRs among the sources (named lists left out)."""
        return only_networks(self.peer_sources)

    @property
    def named_lists(self) -> tuple[str, ...]:
        """Every list the rule names, in `from` and in `except`."""
        return (*list_names(self.sources), *list_names(self.excepts))

    @field_validator("host_ports", "container_ports", mode="before")
    @classmethod
    def _ports(cls, value: Any, info: ValidationInfo) -> Any:
        return _port_list(value, info)

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> tuple[Peer, ...] | None:
        return addresses(value, lists=True)

    @field_validator("excepts", mode="before")
    @classmethod
    def _excepts(cls, value: Any) -> tuple[Peer, ...]:
        return excepts(value)

    @model_validator(mode="after")
    def _except_needs_addresses(self) -> Self:
        if self.excepts and self.peer_sources == ():
            raise fail("except carves addresses out of from: give from addresses too")
        return self


class EgressRule(MappingModel):
    """Where a container may connect to; no ports means every port and protocol."""

    _renames: ClassVar[Mapping[str, tuple[str, bool]]] = {
        "to": ("destinations", False),
        "port": ("ports", True),
        "ports": ("ports", False),
        "to_containers": ("to_containers", False),
        "to_fqdn": ("fqdns", False),
        "except": ("excepts", False),
    }

    ports: tuple[PortRange, ...] = ()
    destinations: tuple[Peer, ...] | None = None
    to_containers: tuple[ContainerSelector, ...] = ()
    fqdns: tuple[str, ...] = ()
    excepts: tuple[Peer, ...] = ()

    @field_validator("to_containers", mode="before")
    @classmethod
    def _to_containers(cls, value: Any) -> Any:
        return _selectors(value)

    @model_validator(mode="after")
    def _enforceable(self) -> Self:
        no_swarm_peers(self.to_containers, "to_containers")
        return self

    @property
    def peer_destinations(self) -> tuple[Peer, ...] | None:
        """Destinations as addresses and lists; a rule naming only containers or only
        domain names reaches no address."""
        named = self.to_containers or self.fqdns
        if named and "destinations" not in self.model_fields_set:
            return ()
        return self.destinations

    @property
    def cidr_destinations(self) -> tuple[Network, ...] | None:
        """The CIDRs among the destinations (named lists left out)."""
        return only_networks(self.peer_destinations)

    @property
    def named_lists(self) -> tuple[str, ...]:
        return (*list_names(self.destinations), *list_names(self.excepts))

    @field_validator("fqdns", mode="before")
    @classmethod
    def _fqdns(cls, value: Any) -> tuple[str, ...]:
        return patterns(value)

    @field_validator("ports", mode="before")
    @classmethod
    def _ports(cls, value: Any, info: ValidationInfo) -> Any:
        return _port_list(value, info)

    @field_validator("destinations", mode="before")
    @classmethod
    def _destinations(cls, value: Any) -> tuple[Peer, ...] | None:
        return addresses(value, lists=True)

    @field_validator("excepts", mode="before")
    @classmethod
    def _excepts(cls, value: Any) -> tuple[Peer, ...]:
        return excepts(value)

    @model_validator(mode="after")
    def _except_needs_addresses(self) -> Self:
        if self.excepts and self.peer_destinations == ():
            raise fail("except carves addresses out of to: give to addresses too")
        return self


RuleT = TypeVar("RuleT", IngressRule, EgressRule)


class DirectionPolicy(Model, Generic[RuleT]):
    """One direction of traffic: allow all, deny all, or allow what the rules name.

    YAML writes it as the word allow or deny, or as the list of rules itself; an empty
    list therefore denies everything.
    """

    mode: Literal["allow", "deny", "list"]
    rules: tuple[RuleT, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, str) and data in VERDICTS:
            return {"mode": data}
        if isinstance(data, list | tuple):
            return {"mode": "list", "rules": data}
        if from_yaml(info) or not isinstance(data, dict):
            hint = did_you_mean(data, VERDICTS) if isinstance(data, str) else ""
            raise fail(f"expected allow, deny or a list of rules, got {shown(data)}{hint}")
        return data

    @model_validator(mode="after")
    def _rules_need_list(self) -> Self:
        if self.mode != "list" and self.rules:
            raise fail(f"rules are only used with mode list, not {self.mode}")
        return self


class IngressPolicy(DirectionPolicy[IngressRule]):
    """Incoming traffic to a container's published ports."""


class EgressPolicy(DirectionPolicy[EgressRule]):
    """Traffic a container starts towards anything outside itself."""
