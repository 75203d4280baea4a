"""Creates the lab's two namespaces and the one link between them.

Interfaces are created directly inside the lab namespaces (`ip -n`), so nothing is
ever added to the machine's own namespace, not even for an instant.
"""

from __future__ import annotations

import sys

from dockwall.lab import topology as t
from dockwall.runner import Runner, SubprocessRunner, netns_path

NO_DAD = (
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.dad_transmits=0",
    "net.ipv6.conf.default.dad_transmits=0",
)


def in_ns(ns: str) -> SubprocessRunner:
    """A runner whose commands run inside the named lab namespace."""
    return SubprocessRunner(netns=netns_path(ns))


def create_namespaces(runner: Runner, names: t.LabNames) -> None:
    for ns in (names.host_ns, names.inet_ns):
        runner.run(["ip", "netns", "add", ns])
        ns_runner = in_ns(ns)
        ns_runner.run(["sysctl", "-q", "-w", *NO_DAD])
        ns_runner.run(["ip", "link", "set", "lo", "up"])


def wire_uplink(runner: Runner, names: t.LabNames) -> None:
    """The Docker host's uplink to the lab internet, with default routes through it."""
    runner.run(
        [
            "ip",
            "-n",
            names.host_ns,
            "link",
            "add",
            t.UPLINK_IF,
            "type",
            "veth",
            "peer",
            "name",
            t.UPLINK_IF,
            "netns",
            names.inet_ns,
        ]
    )
    sides = (
        (names.host_ns, t.HOST_UPLINK_V4, t.HOST_UPLINK_V6),
        (names.inet_ns, t.INET_UPLINK_V4, t.INET_UPLINK_V6),
    )
    for ns, v4, v6 in sides:
        runner.run(
            ["ip", "-n", ns, "addr", "add", f"{v4}/{t.UPLINK_V4_PREFIX}", "dev", t.UPLINK_IF]
        )
        runner.run(
            [
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                f"{v6}/{t.UPLINK_V6_PREFIX}",
                "dev",
                t.UPLINK_IF,
                "nodad",
            ]
        )
        runner.run(["ip", "-n", ns, "link", "set", t.UPLINK_IF, "up"])
    runner.run(["ip", "-n", names.host_ns, "route", "add", "default", "via", t.INET_UPLINK_V4])
    runner.run(
        ["ip", "-n", names.host_ns, "-6", "route", "add", "default", "via", t.INET_UPLINK_V6]
    )


def add_internet_hosts(runner: Runner, names: t.LabNames) -> None:
    """The internet's addresses live on its loopback; the link route reaches the host."""
    for address in (*t.INTERNET_V4, t.DNS_V4):
        runner.run(["ip", "-n", names.inet_ns, "addr", "add", f"{address}/32", "dev", "lo"])
    for address in (*t.INTERNET_V6, t.DNS_V6):
        runner.run(
            ["ip", "-n", names.inet_ns, "addr", "add", f"{address}/128", "dev", "lo", "nodad"]
        )


def listener_argv(
    lab: str,
    addresses: tuple[str, ...],
    tcp: tuple[int, ...],
    udp: tuple[int, ...],
    *,
    dual_stack: bool = False,
) -> list[str]:
    """The listener's command line, tagged with the lab's name so teardown can find it."""
    argv = [sys.executable, "-m", "dockwall.lab.listener", "--lab", lab]
    argv += ["--dual-stack"] if dual_stack else []
    argv += [arg for a in addresses for arg in ("--addr", a)]
    argv += [arg for p in tcp for arg in ("--tcp", str(p))]
    argv += [arg for p in udp for arg in ("--udp", str(p))]
    return argv


def list_namespaces(runner: Runner) -> list[str]:
    out = runner.run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]
