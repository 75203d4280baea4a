"""The host's own network interfaces, so the defaults can hold every other one.

Docker networks are bridges, and a bridge created while no agent runs may have any
name (`com.docker.network.bridge.name`). Rather than guessing Docker's names, dockwall
records the interfaces that are the host's own when it applies: everything that is
neither a Docker bridge nor a port of a bridge. Forwarded traffic to or from any other
interface is held by the defaults.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable

from dockwall.errors import CommandError
from dockwall.runner import Runner

LINK_ARGV = ("ip", "-j", "link", "show")


def own_interfaces(links: Iterable[dict[str, object]], docker_bridges: set[str]) -> tuple[str, ...]:
    """Names of links that are neither Docker bridges nor enslaved to a bridge (a
    container's veth is a bridge port: its traffic shows up as the bridge's)."""
    names = {
        str(link["ifname"])
        for link in links
        if isinstance(link.get("ifname"), str)
        and "master" not in link
        and link["ifname"] not in docker_bridges
    }
    return tuple(sorted(names))


def host_interfaces(runner: Runner, docker_bridges: set[str]) -> tuple[str, ...] | None:
    """None when `ip` cannot tell: the backends then hold only bridges named br-*."""
    try:
        result = runner.run(list(LINK_ARGV), check=False)
    except CommandError:
        return None
    if result.returncode != 0:
        return None
    try:
        links = json.loads(result.stdout)
    except ValueError:
        return None
    if not isinstance(links, list):
        return None
    return own_interfaces((link for link in links if isinstance(link, dict)), docker_bridges)


RTMGRP_LINK = 1  # linux/rtnetlink.h: link added, removed or changed (master included)


class LinkWatch:
    """Whether the namespace's links changed since the last look, from the kernel's own
    rtnetlink notifications: the agent runs `ip -j link` at a drift check only then
    (or at its backstop), not as a process every second on a host where nothing
    changes. Opened in the caller's namespace; a lost notification (ENOBUFS) counts as
    a change."""

    def __init__(self) -> None:
        kind = socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        self.sock = socket.socket(socket.AF_NETLINK, kind, socket.NETLINK_ROUTE)
        self.sock.bind((0, RTMGRP_LINK))

    def changed(self) -> bool:
        """Reads every notification waiting; True when there was any."""
        seen = False
        for _ in range(10_000):
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return seen
            except OSError:  # ENOBUFS: notifications were dropped, so anything may differ
                seen = True
                continue
            seen = seen or bool(data)
        return True


def link_watch() -> LinkWatch | None:
    """None where rtnetlink cannot be subscribed to (then every check reads the links)."""
    try:
        return LinkWatch()
    except OSError:
        return None
