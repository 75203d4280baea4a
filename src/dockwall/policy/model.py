"""The validated policy file: which containers are matched, and what may reach them or
leave them, plus the defaults and how far container labels are trusted."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self, get_args

from pydantic import Field, field_validator, model_validator

from dockwall.errors import Location
from dockwall.policy.base import MappingModel
from dockwall.policy.fields import Network
from dockwall.policy.logging import LogPolicy
from dockwall.policy.problems import choice, fail, shown
from dockwall.policy.rules import (
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


class ContainerEntry(ContainerSelector):
    """The policy for the containers one matcher selects; None directions use defaults.

    `index` and `location` say where the entry was written, for later messages; they are
    not part of what the entry means, so equality and hashing ignore them.
    """

    _internal: ClassVar[frozenset[str]] = frozenset({"index", "location"})

    ingress: IngressPolicy | None = None
    egress: EgressPolicy | None = None
    index: int | None = Field(default=None, exclude=True, repr=False)
    location: Location | None = Field(default=None, exclude=True, repr=False)

    def _meaning(self) -> tuple[object, ...]:
        return (self.name, self.compose, self.label, self.ingress, self.egress)

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

    @field_validator("ingress", "egress", "peers", mode="before")
    @classmethod
    def _verdict(cls, value: Any) -> str:
        return choice(value, VERDICTS)


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
    containers: bool = False

    @field_validator("trust", "containers", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        return choice(value, ("true", "false")) == "true"

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
    log: LogPolicy = LogPolicy()
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
