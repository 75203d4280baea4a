"""The lab itself works: real packets cross it as plain Docker would let them."""

from __future__ import annotations

import pytest

from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("source", ["192.0.2.100", "2001:db8:200::7"])
def test_published_port_reachable_from_internet(prober: Prober, source: str) -> None:
    assert prober.probe(source, "host:8080/tcp")
    assert prober.probe(source, "host:8053/udp")


def test_unpublished_port_is_closed(prober: Prober) -> None:
    assert not prober.probe("192.0.2.100", "host:8081/tcp")


@pytest.mark.parametrize(
    "target", ["203.0.113.10:443/tcp", "[2001:db8:203::10]:443/tcp", "203.0.113.20:53/udp"]
)
def test_container_reaches_internet_listener(prober: Prober, target: str) -> None:
    assert prober.probe("container:worker", target)


def test_closed_internet_port_is_reported_closed(prober: Prober) -> None:
    assert not prober.probe("container:worker", "203.0.113.10:9/tcp")


def test_container_reaches_docker_host_service(prober: Prober) -> None:
    assert prober.probe("container:web", f"{t.HOST_UPLINK_V4}:{t.HOST_SERVICE_PORT}/tcp")


def test_lab_has_no_route_to_the_machine_uplink(lab: Lab) -> None:
    routes = lab.host.run(["ip", "-4", "route", "show"]).stdout
    assert f"default via {t.INET_UPLINK_V4} dev {t.UPLINK_IF}" in routes
    inet_links = lab.runner.run(["ip", "-n", lab.names.inet_ns, "-br", "link"]).stdout
    assert sorted(line.split()[0].split("@")[0] for line in inet_links.splitlines()) == [
        "lo",
        "uplink",
    ]
