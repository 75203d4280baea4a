"""The validated policy file: which containers are matched, and what may reach them or
leave them, plus the defaults and how far container labels are trusted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal, Self, get_args

from pydantic import Field, field_validator, model_validator

from dockwall.errors import Location
from dockwall.policy.base import MappingModel
from dockwall.policy.fields import Network, SpecError, check_name
from dockwall.policy.fqdn import DnsSettings, patterns
from dockwall.policy.listfile import ListContents
from dockwall.policy.logging import LogPolicy
from dockwall.policy.problems import PathStep, choice, fail, shown
from dockwall.policy.rules import (
    OVERLAY_PEERS,
    VERDICTS,
    ContainerSelector,
    EgressPolicy,
    IngressPolicy,
    ListRef,
    networks,
)

__all__ = [
    "BACKENDS",
    "BackendChoice",
    "ContainerEntry",
    "Defaults",
    "LabelPolicy",
    "ListSpec",
    "Policy",
]

BackendChoice = Literal["auto", "iptables", "nftables"]
"""The one spelling of the backend choice: the policy's `backend:`, `--backend`, the engine."""
BACKENDS: tuple[BackendChoice, ...] = get_args(BackendChoice)
DENY_WITH = ("drop", "reject")
ON_ERROR = ("fail", "skip")
DenyWith = Literal["drop", "reject"]
MAX_LIST_NAME = 24


class ListSpec(MappingModel):
    """A named address list kept in a file (threat feeds, country ranges): one address
    or CIDR per line. `on_error: skip` leaves bad lines out with a warning instead of
    refusing the whole policy; a relative `file` is relative to the policy file."""

    file: str
    on_error: Literal["fail", "skip"] = "fail"

    @field_validator("file", mode="before")
    @classmethod
    def _file(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise fail(f"expected a file path, got {shown(value)}")
        return value

    @field_validator("on_error", mode="before")
    @classmethod
    def _on_error(cls, value: Any) -> str:
        return choice(value, ON_ERROR)


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return choice(value, ("true", "false")) == "true"


class ContainerEntry(ContainerSelector):
    """The policy for the containers one matcher selects; None directions use defaults.

    `index` and `location` say where the entry was written, for later messages; they are
    not part of what the entry means, so equality and hashing ignore them.
    """

    _internal: ClassVar[frozenset[str]] = frozenset({"index", "location"})

    ingress: IngressPolicy | None = None
    egress: EgressPolicy | None = None
    restrict_dns: bool | None = None
    deny_with: DenyWith | None = None
    index: int | None = Field(default=None, exclude=True, repr=False)
    location: Location | None = Field(default=None, exclude=True, repr=False)

    @field_validator("restrict_dns", mode="before")
    @classmethod
    def _restrict(cls, value: Any) -> bool | None:
        return None if value is None else flag(value)

    @field_validator("deny_with", mode="before")
    @classmethod
    def _deny_with(cls, value: Any) -> str | None:
        return None if value is None else choice(value, DENY_WITH)

    def _meaning(self) -> tuple[object, ...]:
        selector = (self.name, self.compose, self.label, self.service, self.stack)
        return (*selector, self.ingress, self.egress, self.restrict_dns, self.deny_with)

    @model_validator(mode="after")
    def _swarm_peers(self) -> Self:
        """A task reaches its peers over overlay networks, out of the host's sight."""
        if not self.swarm:
            return self
        for key, direction, field in (
            ("ingress", self.ingress, "from_containers"),
            ("egress", self.egress, "to_containers"),
        ):
            for index, rule in enumerate(direction.rules if direction else ()):
                if getattr(rule, field):
                    raise fail(
                        f"{field} cannot be enforced for {self.describe()}: {OVERLAY_PEERS}",
                        at=(key, index, field),
                        on_key=True,
                    )
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContainerEntry):
            return NotImplemented
        return self._meaning() == other._meaning()

    def __hash__(self) -> int:
        return hash(self._meaning())


class Defaults(MappingModel):
    """What happens to containers that no entry matches."""

    ingress: Literal["allow", "deny"] = "allow"
    egress: Literal["allow", "deny"] = "allow"
    peers: Literal["allow", "deny"] = "allow"
    restrict_dns: bool = False
    deny_with: DenyWith = "drop"

    @field_validator("ingress", "egress", "peers", mode="before")
    @classmethod
    def _verdict(cls, value: Any) -> str:
        return choice(value, VERDICTS)

    @field_validator("restrict_dns", mode="before")
    @classmethod
    def _restrict(cls, value: Any) -> bool:
        return flag(value)

    @field_validator("deny_with", mode="before")
    @classmethod
    def _deny_with(cls, value: Any) -> str:
        return choice(value, DENY_WITH)


class LabelPolicy(MappingModel):
    """How far `dockwall.ingress` / `dockwall.egress` container labels are trusted.

    Labels are written by whoever starts a container, so the file decides: ignore them
    (`trust: false`), cap the addresses they may open (`ingress_from`, `egress_to`), and
    whether they may name other containers at all (`containers`, off by default, since a
    label could otherwise open a path to someone else's container).
    """

    trust: bool = True
    ingress_from: tuple[Network, ...] | None = None
    egress_to: tuple[Network, ...] | None = None
    egress_fqdn: tuple[str, ...] | None = None
    containers: bool = False

    @field_validator("trust", "containers", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        return flag(value)

    @field_validator("egress_fqdn", mode="before")
    @classmethod
    def _fqdn_cap(cls, value: Any) -> tuple[str, ...] | None:
        return None if value is None else patterns(value)

    @field_validator("ingress_from", "egress_to", mode="before")
    @classmethod
    def _caps(cls, value: Any) -> tuple[Network, ...] | None:
        return networks(value)


class Policy(MappingModel):
    """A whole policy file."""

    version: Literal[1]
    backend: BackendChoice = "auto"
    defaults: Defaults = Defaults()
    labels: LabelPolicy = LabelPolicy()
    dns: DnsSettings = DnsSettings()
    lists: dict[str, ListSpec] = Field(default_factory=dict)
    log: LogPolicy = LogPolicy()
    containers: tuple[ContainerEntry, ...] = ()
    loaded_lists: Mapping[str, ListContents] = Field(default_factory=dict, exclude=True, repr=False)
    _internal: ClassVar[frozenset[str]] = frozenset({"loaded_lists"})

    @classmethod
    def _check_yaml(cls, data: dict[str, Any]) -> None:
        if "version" not in data:
            raise fail("is missing: start the policy with version: 1", at=("version",))

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> int:
        if value in (1, "1") and not isinstance(value, bool):
            return 1
        text = value if isinstance(value, str) and len(value) <= 20 else shown(value)
        raise fail(f"unsupported version {text}: this dockwall reads version 1")

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> str:
        return choice(value, BACKENDS)

    @field_validator("lists", mode="before")
    @classmethod
    def _list_names(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise fail(f"expected a mapping of list names to {{file: ...}}, got {shown(value)}")
        for name in value:
            try:
                check_name(str(name), "list name")
            except SpecError as exc:
                raise fail(str(exc), at=(name,), on_key=True) from None
            if len(str(name)) > MAX_LIST_NAME:
                raise fail(
                    f"list names have at most {MAX_LIST_NAME} characters (kernel set names "
                    "are short)",
                    at=(name,),
                    on_key=True,
                )
        return value

    @model_validator(mode="after")
    def _lists_defined(self) -> Self:
        """Every `list:NAME` names a list of `lists`; the first one that does not fails."""
        for path, name in self.list_uses():
            if name not in self.lists:
                known = ", ".join(sorted(self.lists)) or "none defined"
                raise fail(f"list:{name} is not defined under lists ({known})", at=path)
        return self

    def list_uses(self) -> Iterator[tuple[tuple[PathStep, ...], str]]:
        """(where, list name) for every list an entry names, in from/to and except."""
        for index, entry in enumerate(self.containers):
            for direction in ("ingress", "egress"):
                policy = getattr(entry, direction)
                if policy is None:
                    continue
                for number, rule in enumerate(policy.rules):
                    for field in ("sources", "destinations", "excepts"):
                        for at, peer in enumerate(getattr(rule, field, None) or ()):
                            if isinstance(peer, ListRef):
                                yield ("containers", index, direction, number, field, at), peer.name

    @model_validator(mode="after")
    def _distinct_matchers(self) -> Self:
        """Two entries with one matcher would leave it unclear which one applies."""
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.containers):
            first = seen.setdefault(entry.describe(), index)
            if first != index:
                raise fail(
                    f"{entry.describe()} is already matched by containers[{first}]",
                    at=("containers", index),
                    see=("containers", first),
                )
        return self
