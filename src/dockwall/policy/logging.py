"""`log:` in the policy: how dropped new connections are reported.

Every drop path logs through NFLOG, rate-limited in the kernel with one bucket per
direction, so a flood costs a bounded number of records while the drop counters stay
exact. The policy can tune each direction's rate or turn logging off:

    log: off
    log: {rate: 20/second, burst: 50}
    log: {rate: 5/second, egress: off, peers: {rate: 1/second, burst: 5}}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ValidationInfo, field_validator, model_validator

from dockwall.policy.base import MappingModel, check_keys, from_yaml
from dockwall.policy.problems import fail, shown

__all__ = ["DEFAULT_GROUP", "LogPolicy", "LogRate", "RateUnit"]

RateUnit = Literal["second", "minute", "hour", "day"]
UNITS: dict[str, RateUnit] = {
    "s": "second", "sec": "second", "second": "second",
    "m": "minute", "min": "minute", "minute": "minute",
    "h": "hour", "hour": "hour",
    "d": "day", "day": "day",
}  # fmt: skip
RATE = re.compile(r"\s*(?P<count>\d{1,6})\s*/\s*(?P<unit>[a-z]+)\s*")
MAX_RATE = 100_000
MAX_BURST = 10_000
DEFAULT_GROUP = 2710
KEYS = ("rate", "burst", "group", "ingress", "egress", "peers")
OFF = ("off", "false", "no")
ON = ("on", "true", "yes")


def parse_rate(value: Any, at: tuple[str, ...] = ()) -> tuple[int, RateUnit]:
    """`20/second`, `20/s`, `300/minute`: the count and the unit as written."""
    match = RATE.fullmatch(value) if isinstance(value, str) else None
    unit = UNITS.get(match["unit"]) if match else None
    if match is None or unit is None:
        raise fail(
            f"must be a rate like 20/second (second, minute, hour or day), not {shown(value)}",
            at=at,
        )
    count = int(match["count"])
    if not 1 <= count <= MAX_RATE:
        raise fail(f"must be between 1/{unit} and {MAX_RATE}/{unit}, not {count}/{unit}", at=at)
    return count, unit


def whole_number(value: Any, low: int, high: int, at: tuple[str, ...] = ()) -> int:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.strip().isdigit():
        raise fail(f"must be a whole number from {low} to {high}, not {shown(value)}", at=at)
    number = int(text)
    if not low <= number <= high:
        raise fail(f"must be from {low} to {high}, not {number}", at=at)
    return number


def switch(value: Any) -> bool | None:
    """True/False for on/off (YAML 1.1 spellings too), None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in OFF + ON:
        return value.lower() in ON
    return None


class LogRate(MappingModel):
    """One direction's kernel bucket: at most `rate` records, bursts up to `burst`."""

    rate: tuple[int, RateUnit] = (20, "second")
    burst: int = 50

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> tuple[int, RateUnit]:
        if isinstance(value, tuple):
            return value
        return parse_rate(value)

    @field_validator("burst", mode="before")
    @classmethod
    def _burst(cls, value: Any) -> int:
        return whole_number(value, 1, MAX_BURST)


def direction_value(value: Any, base: dict[str, Any]) -> Any:
    """`off` turns a direction off; a mapping overrides the shared rate and burst."""
    on = switch(value)
    if on is False:
        return None
    if on is True:
        return base
    if isinstance(value, dict):
        return {**base, **value}
    return value


class LogPolicy(MappingModel):
    """None for a direction means its drops are counted but not logged."""

    group: int = DEFAULT_GROUP
    ingress: LogRate | None = LogRate()
    egress: LogRate | None = LogRate()
    peers: LogRate | None = LogRate()

    @model_validator(mode="before")
    @classmethod
    def _read_yaml(cls, data: Any, info: ValidationInfo) -> Any:
        """`off`/`on`, and `rate`/`burst` shared by every direction not given its own.
        Replaces the base check: this mapping may also be a single word."""
        if not from_yaml(info):
            return data
        on = switch(data)
        if on is not None:
            return {} if on else {"ingress": None, "egress": None, "peers": None}
        if not isinstance(data, dict):
            raise fail(f"must be off, on or a mapping like {{rate: 20/second}}, not {shown(data)}")
        check_keys(data, KEYS)
        if "rate" in data:
            parse_rate(data["rate"], at=("rate",))
        if "burst" in data:
            whole_number(data["burst"], 1, MAX_BURST, at=("burst",))
        base = {key: data[key] for key in ("rate", "burst") if key in data}
        found = {key: value for key, value in data.items() if key not in ("rate", "burst")}
        for direction in ("ingress", "egress", "peers"):
            found[direction] = direction_value(found.get(direction, True), base)
        return found

    @field_validator("group", mode="before")
    @classmethod
    def _group(cls, value: Any) -> int:
        return whole_number(value, 1, 65535)

    @property
    def enabled(self) -> bool:
        return any(d is not None for d in (self.ingress, self.egress, self.peers))
