"""Sends real packets between lab endpoints and reports which got through.

A source is an internet address of the lab, `container:NAME`, or `host` (the Docker
host itself). A destination is `host:PORT/PROTO` (a published port, reached at the
host's uplink address), `container:NAME:PORT/PROTO` or `ADDRESS:PORT/PROTO`.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from docker.errors import NotFound

from dockwall.errors import DockwallError
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.prober import Outcome
from dockwall.runner import SubprocessRunner, netns_path

DEFAULT_TIMEOUT = 1.0
Proto = Literal["tcp", "udp"]


@dataclass(frozen=True)
class Probe:
    """One attempt: from a source namespace (bound to `src` if given) to dst:port/proto."""

    dst: str
    port: int
    proto: Proto
    src: str | None = None

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.dst).version

    def label(self) -> str:
        host = f"[{self.dst}]" if self.family == 6 else self.dst
        return f"{host}:{self.port}/{self.proto}"


def parse_port(text: str) -> tuple[int, Proto]:
    port, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp") or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise DockwallError(f"{text!r}: expected PORT/tcp or PORT/udp with PORT in 1-65535")
    return int(port), proto  # type: ignore[return-value]


def split_address_port(text: str) -> tuple[str, str]:
    """`[v6]:port/proto` or `v4:port/proto` into address and port part."""
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        return address, rest.removeprefix(":")
    address, _, rest = text.rpartition(":")
    return address, rest


class Prober:
    """Knows where each endpoint of one lab lives and runs probe batches there."""

    def __init__(self, lab: Lab, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.lab = lab
        self.timeout = timeout

    def container_attrs(self, name: str) -> dict[str, object]:
        with self.lab.client() as client:
            try:
                attrs: dict[str, object] = client.api.inspect_container(name)
            except NotFound as exc:
                raise DockwallError(f"container {name!r} not found in lab") from exc
        return attrs

    def container_netns(self, name: str) -> str:
        state = self.container_attrs(name)["State"]
        pid = state["Pid"] if isinstance(state, dict) else 0
        if not pid:
            raise DockwallError(f"container {name!r} is not running")
        return f"/proc/{pid}/ns/net"

    def container_address(self, name: str, family: int) -> str:
        settings = self.container_attrs(name)["NetworkSettings"]
        networks = settings["Networks"] if isinstance(settings, dict) else {}
        key = "IPAddress" if family == 4 else "GlobalIPv6Address"
        for net in networks.values():
            if net.get(key):
                return str(net[key])
        raise DockwallError(f"container {name!r} has no IPv{family} address")

    def source(self, text: str) -> tuple[str, str | None]:
        """The namespace to probe from and the source address to bind, if any."""
        if text == "host":
            return netns_path(self.lab.names.host_ns), None
        if text.startswith("container:"):
            return self.container_netns(text.removeprefix("container:")), None
        try:
            address = str(ipaddress.ip_address(text.strip("[]")))
        except ValueError as exc:
            raise DockwallError(
                f"source {text!r}: use an internet address, container:NAME or host"
            ) from exc
        if address not in t.INTERNET_V4 + t.INTERNET_V6:
            raise DockwallError(
                f"source {address} is not a lab internet address; use one of "
                + ", ".join(t.INTERNET_V4 + t.INTERNET_V6)
            )
        return netns_path(self.lab.names.inet_ns), address

    def destination(self, text: str, family: int) -> Probe:
        if text.startswith("host:"):
            port, proto = parse_port(text.removeprefix("host:"))
            dst = t.HOST_UPLINK_V4 if family == 4 else t.HOST_UPLINK_V6
            return Probe(dst, port, proto)
        if text.startswith("container:"):
            name, _, port_text = text.removeprefix("container:").partition(":")
            port, proto = parse_port(port_text)
            return Probe(self.container_address(name, family), port, proto)
        address, port_text = split_address_port(text)
        try:
            dst = str(ipaddress.ip_address(address))
        except ValueError as exc:
            raise DockwallError(f"destination {text!r}: expected ADDRESS:PORT/PROTO") from exc
        port, proto = parse_port(port_text)
        return Probe(dst, port, proto)

    def run(self, ns: str, probes: Sequence[Probe]) -> list[bool]:
        """One prober process in `ns` tries every probe concurrently."""
        return [outcome == "open" for outcome in self.outcomes(ns, probes)]

    def outcomes(self, ns: str, probes: Sequence[Probe]) -> list[Outcome]:
        """Like `run`, saying how each closed probe ended: refused, unreachable or timeout."""
        if not probes:
            return []
        batch = [
            {"dst": p.dst, "port": p.port, "proto": p.proto, "src": p.src, "timeout": self.timeout}
            for p in probes
        ]
        result = SubprocessRunner(netns=ns).run(
            [sys.executable, "-m", "dockwall.lab.prober", "--outcomes"],
            input=json.dumps(batch) + "\n",
            timeout=30 + self.timeout * 2,
        )
        answers: list[Outcome] = json.loads(result.stdout)
        return answers

    def probe(self, source: str, destination: str, family: int = 4) -> bool:
        ns, src = self.source(source)
        if src is not None:
            family = ipaddress.ip_address(src).version
        probe = self.destination(destination, family)
        return self.run(ns, [Probe(probe.dst, probe.port, probe.proto, src)])[0]
