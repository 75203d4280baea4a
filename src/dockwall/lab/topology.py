"""Names and addresses of a lab: one place, so tests, the prober and teardown agree.

A lab is two network namespaces joined by one veth pair: the Docker host and
"the internet". Every address is from the documentation ranges (RFC 5737, RFC 3849)
or the lab's own Docker networks, so no probe can ever leave the machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dockwall.errors import DockwallError

PREFIX = "dwl-"
STATE_ROOT = Path("/run/dockwall-lab")
DATA_ROOT = Path("/var/lib/dockwall-lab")
NAME_PATTERN = re.compile(r"^[a-z0-9]{1,10}$")

UPLINK_IF = "uplink"
HOST_UPLINK_V4 = "198.51.100.2"
INET_UPLINK_V4 = "198.51.100.1"
UPLINK_V4_PREFIX = 30
HOST_UPLINK_V6 = "2001:db8:ffff::2"
INET_UPLINK_V6 = "2001:db8:ffff::1"
UPLINK_V6_PREFIX = 64

INTERNET_V4 = ("192.0.2.100", "192.0.2.7", "198.51.100.7", "203.0.113.10", "203.0.113.20")
INTERNET_V6 = ("2001:db8:100::100", "2001:db8:200::7", "2001:db8:203::10", "2001:db8:203::20")
INTERNET_PORTS = (53, 80, 443, 8443)
HOST_SERVICE_PORT = 2222
DNS_V4 = "192.0.2.53"
DNS_V6 = "2001:db8:53::53"

DOCKER_V6_CIDR = "2001:db8:d0c::/64"
SHOP_V4_CIDR = "172.30.0.0/24"
SHOP_V6_CIDR = "2001:db8:d0c:1::/64"
IMAGE = "dockwall-lab/busybox:latest"


@dataclass(frozen=True)
class LabNames:
    """Every name and path that belongs to the lab called `name`."""

    name: str

    @classmethod
    def checked(cls, name: str) -> LabNames:
        """Lab names end up in namespace names and paths, so only a safe alphabet is allowed."""
        if not NAME_PATTERN.fullmatch(name):
            raise DockwallError(
                f"lab name {name!r}: use 1-10 lowercase letters or digits (it becomes part of "
                "namespace names and paths)"
            )
        return cls(name)

    @property
    def host_ns(self) -> str:
        return f"{PREFIX}{self.name}-host"

    @property
    def inet_ns(self) -> str:
        return f"{PREFIX}{self.name}-inet"

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def data_dir(self) -> Path:
        return DATA_ROOT / self.name

    @property
    def socket(self) -> Path:
        return self.state_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def dockerd_pidfile(self) -> Path:
        return self.state_dir / "docker.pid"

    @property
    def zone_file(self) -> Path:
        """The records of the lab's DNS server (dnsserver.py), rewritten by tests."""
        return self.state_dir / "dns-zone.json"

    @property
    def resolv_conf(self) -> Path:
        """The Docker host's resolver list, for dockwall's forwarder: the lab's server."""
        return self.state_dir / "resolv.conf"

    @property
    def cgroup_parent(self) -> str:
        return f"{PREFIX}{self.name}"

    @property
    def containerd_namespace(self) -> str:
        return f"{PREFIX}{self.name}"
