"""Host states for compiler and backend tests, shaped like the lab's sample containers."""

from __future__ import annotations

import ipaddress

from dockwall.lab.demo import EXAMPLE as EXAMPLE_POLICY
from dockwall.model.state import Attachment, Bridge, Container, HostState, PublishedPort

DOCKER0 = Bridge(
    "bridge",
    "docker0",
    (ipaddress.ip_network("172.17.0.0/16"), ipaddress.ip_network("2001:db8:d0c::/64")),
)
SHOP = Bridge("shop", "br-5b3cfa957ae6", (ipaddress.ip_network("172.30.0.0/24"),))


def container(name: str, cid: str, bridge: Bridge, v4: str, v6: str, ports=(), labels=None):  # type: ignore[no-untyped-def]
    return Container(
        id=cid * 6,
        name=name,
        labels=labels or {},
        attachments=(
            Attachment(
                bridge.network,
                bridge.interface,
                (ipaddress.ip_address(v4), ipaddress.ip_address(v6)),
            ),
        ),
        ports=tuple(ports),
    )


WEB = container(
    "web",
    "a1b2c3d4e5f6"[:2],
    DOCKER0,
    "172.17.0.2",
    "2001:db8:d0c::242:ac11:2",
    [PublishedPort(8080, 80, "tcp", "0.0.0.0")],
)
DB = container(
    "db",
    "dd",
    SHOP,
    "172.30.0.2",
    "2001:db8:d0c:1::2",
    [PublishedPort(5432, 5432, "tcp")],
    labels={"com.docker.compose.project": "shop", "com.docker.compose.service": "db"},
)
WORKER = container(
    "worker",
    "ee",
    SHOP,
    "172.30.0.3",
    "2001:db8:d0c:1::3",
    labels={"com.docker.compose.project": "shop", "com.docker.compose.service": "worker"},
)
STATE = HostState((DOCKER0, SHOP), (WEB, DB, WORKER))

EXAMPLE = EXAMPLE_POLICY.read_text()
