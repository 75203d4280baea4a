"""What every policy model shares: strictness, immutability and the YAML input form.

The models accept two inputs. Code builds them from normalized values (`host_ports`,
`sources`). The loader validates plain data read from YAML, flagged through the pydantic
validation context; there keys are the YAML spellings (`port`, `from`) and one value may
stand for a one-item list. Both go through the same validators, so a policy built in code
is held to exactly the rules a policy file is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from dockwall.policy.problems import clip, did_you_mean, fail, shown

_YAML_FLAG = "dockwall.policy.yaml"


def yaml_context() -> dict[str, bool]:
    """The validation context that marks the input as plain data read from YAML."""
    return {_YAML_FLAG: True}


def from_yaml(info: ValidationInfo) -> bool:
    """Whether a validator is looking at YAML input (see yaml_context)."""
    return isinstance(info.context, dict) and info.context.get(_YAML_FLAG) is True


class Model(BaseModel):
    """Frozen and closed: an unexpected field is a mistake, never silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MappingModel(Model):
    """A model that YAML writes as a mapping.

    `_renames` maps a YAML key to the field it fills and whether it holds a single value
    standing for a one-item list (`port: 80/tcp` for `ports: [80/tcp]`). `_internal`
    fields are set by the loader and cannot be written in YAML.
    """

    _renames: ClassVar[Mapping[str, tuple[str, bool]]] = {}
    _internal: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def yaml_keys(cls) -> tuple[str, ...]:
        """The keys a YAML mapping for this model may use, in documentation order."""
        renamed = {field for field, _ in cls._renames.values()}
        hidden = renamed | cls._internal
        return (*(name for name in cls.model_fields if name not in hidden), *cls._renames)

    @classmethod
    def renames(cls) -> Mapping[str, tuple[str, bool]]:
        """YAML keys that fill a differently named field (see the class docstring)."""
        return cls._renames

    @model_validator(mode="before")
    @classmethod
    def _read_yaml(cls, data: Any, info: ValidationInfo) -> Any:
        """Checks keys before pydantic sees them, so that a typo gets a did-you-mean and
        the YAML key (not a field name) is what the error points at."""
        if not from_yaml(info):
            return data
        if not isinstance(data, dict):
            raise fail(f"expected a mapping, got {shown(data)}")
        check_keys(data, cls.yaml_keys())
        cls._check_yaml(data)
        return _renamed(data, cls._renames)

    @classmethod
    def _check_yaml(cls, data: dict[str, Any]) -> None:
        """Checks that only make sense on the YAML spelling, run before renaming."""


def check_keys(data: dict[str, Any], allowed: Sequence[str]) -> None:
    """Refuses unknown keys and keys written without a value.

    An empty value is refused rather than read as "use the default" because in YAML it is
    usually a half-written line, and the default may be the opposite of what was meant.
    """
    for key, value in data.items():
        if key not in allowed:
            raise fail(
                f"unknown key {clip(key)}{did_you_mean(key, allowed)} "
                f"(allowed keys: {', '.join(allowed)})",
                at=(key,),
                on_key=True,
            )
        if value is None:
            raise fail("has no value: give one, or leave the key out", at=(key,))


def _renamed(data: dict[str, Any], renames: Mapping[str, tuple[str, bool]]) -> dict[str, Any]:
    """The mapping with YAML spellings turned into field names."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in data.items():
        if key not in renames:
            out[key] = value
            continue
        field, single = renames[key]
        if field in given:
            raise fail(f"give either {given[field]} or {key}, not both", at=(key,), on_key=True)
        given[field] = key
        out[field] = [value] if single else value
    return out
