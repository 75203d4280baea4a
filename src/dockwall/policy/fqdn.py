"""Domain-name patterns for `to_fqdn`, with Cilium's semantics, and the `dns:` settings.

A pattern is stored the way it is compared: lower case, IDNA names as A-labels
(`xn--...`), no trailing dot. `*.example.org` matches exactly one label more
(`a.example.org`, not `example.org`, not `a.b.example.org`); `**.example.org` any depth
(still not `example.org` itself); a plain name only itself. Wildcards exist only as the
whole first label, so every pattern is a suffix check a DNS answer can be tested
against without any regular expression built from user input.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Self

from pydantic import field_validator, model_validator

from dockwall.policy.base import MappingModel
from dockwall.policy.fields import PORT_MAX, PORT_MIN, SpecError
from dockwall.policy.problems import clip, fail, shown

MAX_NAME = 253
MAX_LABEL = 63
ONE = "*."
ANY_DEPTH = "**."
LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?", re.ASCII)
DEFAULT_MIN_TTL = 30
DEFAULT_MAX_TTL = 86400
DEFAULT_PORT = 53535
MAX_SECONDS = 604800
DURATION = re.compile(r"(?:(\d{1,7})d)?(?:(\d{1,7})h)?(?:(\d{1,7})m)?(?:(\d{1,7})s)?", re.ASCII)
UNIT_SECONDS = (86400, 3600, 60, 1)


def a_label(label: str, text: str) -> str:
    """One label in its ASCII form; Python's codec applies IDNA's nameprep and punycode."""
    if label.isascii():
        return label.lower()
    try:
        return label.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise SpecError(f"{clip(text)}: label {clip(label)} is not a valid IDNA name") from None


def parse_pattern(text: str) -> str:
    """The normalised pattern, or SpecError saying what is wrong with `text`."""
    raw = text[:-1] if text.endswith(".") else text
    if is_address(raw):
        raise SpecError(f"{clip(text)} is an IP address, not a name: put it in `to:` instead")
    prefix = next((p for p in (ANY_DEPTH, ONE) if raw.startswith(p)), "")
    rest = raw[len(prefix) :]
    if not rest:
        raise SpecError(f"{clip(text) or 'an empty string'} is not a domain name")
    if "*" in rest:
        raise SpecError(
            f"{clip(text)}: * may only be the whole first label: *.example.org (one label) "
            "or **.example.org (any depth)"
        )
    labels = rest.split(".")
    if any(not label for label in labels):
        raise SpecError(f"{clip(text)} has an empty label")
    converted = [a_label(label, text) for label in labels]
    for label in converted:
        if len(label) > MAX_LABEL or not LABEL.fullmatch(label):
            raise SpecError(
                f"{clip(text)}: label {clip(label)} must be 1-63 letters, digits, - or _, "
                "not starting or ending with -"
            )
    name = ".".join(converted)
    if len(prefix) + len(name) > MAX_NAME:
        raise SpecError(f"{clip(text)} is longer than {MAX_NAME} characters")
    return prefix + name


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def normal_name(name: str) -> str:
    """A name from a DNS question, as patterns are stored (answers are already A-labels)."""
    return name.lower().removesuffix(".")


def matches(pattern: str, name: str) -> bool:
    """Whether `name` (normalised) is one of the names `pattern` stands for."""
    if pattern.startswith(ANY_DEPTH):
        suffix = pattern[len(ANY_DEPTH) - 1 :]
        return name.endswith(suffix) and len(name) > len(suffix)
    if pattern.startswith(ONE):
        suffix = pattern[len(ONE) - 1 :]
        head = name[: -len(suffix)]
        return name.endswith(suffix) and bool(head) and "." not in head
    return name == pattern


def covers(cap: str, pattern: str) -> bool:
    """Whether every name `pattern` matches is matched by `cap` (for label caps)."""
    if cap == pattern:
        return True
    for prefix in (ANY_DEPTH, ONE):
        if pattern.startswith(prefix):
            base = pattern[len(prefix) :]
            inside = base == cap[len(ANY_DEPTH) :] or matches(cap, base)
            return cap.startswith(ANY_DEPTH) and inside
    return matches(cap, pattern)


def patterns(value: Any) -> tuple[str, ...]:
    """A YAML list of patterns, each checked; errors point at the offending item."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise fail(f"expected a list of domain names like [api.example.com], got {shown(value)}")
    if not value:
        raise fail("is empty: list domain names like api.example.com or *.example.org")
    found: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise fail(f"expected a domain name, got {shown(item)}", at=(index,))
        try:
            found.append(parse_pattern(item))
        except SpecError as exc:
            raise fail(str(exc), at=(index,)) from None
    return tuple(dict.fromkeys(found))


def whole(value: Any) -> int | None:
    """A number from YAML (which hands scalars over as text) or from Python."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def seconds(value: Any) -> int | None:
    """Seconds written as a number (`300`) or a duration as Docker and Prometheus spell
    it (`30s`, `5m`, `1h`, `1d`, `1h30m`), None for anything else."""
    number = whole(value)
    if number is not None or not isinstance(value, str):
        return number
    found = DURATION.fullmatch(value.strip().lower())
    if found is None or not any(found.groups()):
        return None
    return sum(
        int(part or 0) * unit for part, unit in zip(found.groups(), UNIT_SECONDS, strict=True)
    )


class DnsSettings(MappingModel):
    """How names learned from DNS become addresses in the firewall.

    An address lives clamp(lowest TTL on the answer's chain, min_ttl, max_ttl) seconds.
    min_ttl defaults to 30 s: a JVM caches a lookup for 30 s by default whatever the TTL
    says, and many clients reuse an answer a little past its TTL, so a shorter lifetime
    would break their next connection. max_ttl (a day) keeps an address a zone stopped
    serving from staying open for the week a long TTL might claim. `upstreams` are the
    resolvers the forwarder asks (default: the host's /etc/resolv.conf); `port` is where
    the forwarder listens on the host, containers' DNS being redirected there.
    """

    min_ttl: int = DEFAULT_MIN_TTL
    max_ttl: int = DEFAULT_MAX_TTL
    upstreams: tuple[str, ...] | None = None
    port: int = DEFAULT_PORT

    @field_validator("min_ttl", "max_ttl", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> int:
        found = seconds(value)
        if found is None or not 1 <= found <= MAX_SECONDS:
            raise fail(
                f"expected seconds from 1 to {MAX_SECONDS} (a week), as a number or a "
                f"duration like 30s, 5m, 1h, 1d; got {shown(value)}"
            )
        return found

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> int:
        port = whole(value)
        if port is None or not PORT_MIN <= port <= PORT_MAX:
            raise fail(f"expected a port {PORT_MIN}-{PORT_MAX}, got {shown(value)}")
        if port == 53:
            raise fail("53 is what containers' DNS is redirected from; pick another port")
        return port

    @field_validator("upstreams", mode="before")
    @classmethod
    def _upstreams(cls, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list | tuple) or not value:
            raise fail(f"expected a list of resolver addresses, got {shown(value)}")
        found = []
        for index, item in enumerate(value):
            try:
                found.append(str(ipaddress.ip_address(str(item))))
            except ValueError:
                raise fail(f"expected an IP address, got {shown(item)}", at=(index,)) from None
        return tuple(found)

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.min_ttl > self.max_ttl:
            raise fail(f"min_ttl {self.min_ttl} is above max_ttl {self.max_ttl}", at=("min_ttl",))
        return self

    def lifetime(self, ttl: int) -> int:
        return max(self.min_ttl, min(ttl, self.max_ttl))
