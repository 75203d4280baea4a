"""The validated policy file: which containers are matched, and what may reach them or
leave them, plus the defaults and how far container labels are trusted."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self, get_args

from pydantic import Field, field_validator, model_validator

from dockwall.errors import Location
from dockwall.policy.base import MappingModel
from dockwall.policy.fields import Network
from dockwall.policy.fqdn import DnsSettings, patterns
from dockwall.policy.problems import choice, fail, shown
from dockwall.policy.rules import (
    OVERLAY_PEERS,
    VERDICTS,
    ContainerSelector,
    EgressPolicy,
    IngressPolicy,
    addresses,
)

__all__ = ["BACKENDS", "BackendChoice", "ContainerEntry", "Defaults", "LabelPolicy", "Policy"]

BackendChoice = Literal["auto", "iptables", "nftables"]
"""The one spelling of the backend choice: the policy's `backend:`, `--backend`, the engine."""
BACKENDS: tuple[BackendChoice, ...] = get_args(BackendChoice)


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
    index: int | None = Field(default=None, exclude=True, repr=False)
    location: Location | None = Field(default=None, exclude=True, repr=False)

    @field_validator("restrict_dns", mode="before")
    @classmethod
    def _restrict(cls, value: Any) -> bool | None:
        return None if value is None else flag(value)

    def _meaning(self) -> tuple[object, ...]:
        selector = (self.name, self.compose, self.label, self.service, self.stack)
        return (*selector, self.ingress, self.egress, self.restrict_dns)

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

    @field_validator("ingress", "egress", "peers", mode="before")
    @classmethod
    def _verdict(cls, value: Any) -> str:
        return choice(value, VERDICTS)

    @field_validator("restrict_dns", mode="before")
    @classmethod
    def _restrict(cls, value: Any) -> bool:
        return flag(value)


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
        return addresses(value)


class Policy(MappingModel):
    """A whole policy file."""

    version: Literal[1]
    backend: BackendChoice = "auto"
    defaults: Defaults = Defaults()
    labels: LabelPolicy = LabelPolicy()
    dns: DnsSettings = DnsSettings()
    containers: tuple[ContainerEntry, ...] = ()

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
