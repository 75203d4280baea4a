"""Whether containers' DNS can bypass dockwall's forwarder (egress by name).

From Docker 28 on, the embedded resolver of user-defined networks dials the nameservers
it took from the host's resolv.conf from the host's own namespace (moby PR 48290): those
queries never cross the host's PREROUTING with a container's address, so the redirect
to the forwarder cannot catch them and `to_fqdn` rules learn nothing from them (the
names then open nothing: fail closed, but broken). Only resolvers set with `--dns` or
daemon.json `"dns"` are still dialed from the container.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dockwall.audit.findings import Finding

DAEMON_JSON = "/etc/docker/daemon.json"
FIRST_HOST_SIDE = 28


def daemon_dns(path: Path | None = None) -> list[str]:
    """The `dns` list of daemon.json (DOCKWALL_DAEMON_JSON overrides the path)."""
    where = path or Path(os.environ.get("DOCKWALL_DAEMON_JSON", DAEMON_JSON))
    try:
        data: Any = json.loads(where.read_text())
    except (OSError, ValueError):
        return []
    found = data.get("dns") if isinstance(data, dict) else None
    return [str(x) for x in found] if isinstance(found, list) else []


def major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def dns_bypass(version: str, configured: list[str]) -> list[Finding]:
    found = major(version)
    if found is None or found < FIRST_HOST_SIDE or configured:
        return []
    return [
        Finding(
            code="dns-bypasses-forwarder",
            severity="medium",
            message=(
                f"Docker {version} resolves for user-defined networks from the host's own "
                "namespace: containers' lookups bypass dockwall's DNS forwarder, so to_fqdn "
                "rules learn no addresses from them"
            ),
            evidence=f'Docker {version}; no "dns" in {DAEMON_JSON}',
            fix=(
                f'set "dns": ["<resolver>"] in {DAEMON_JSON} (and the same resolvers in the '
                "policy's dns.upstreams), then restart dockerd: those are dialed from the "
                "container and redirected"
            ),
            where="docker",
        )
    ]
