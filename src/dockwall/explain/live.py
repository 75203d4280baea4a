"""Reads the live host through a Runner: every ruleset, addresses, routes, sysctls, Docker.

Both iptables variants are read, because rules written to the one Docker does not use
still run (and are exactly what audit must point out). A tool that is missing is a
note, not a failure: a host without nft simply has no native tables.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from dockwall.errors import CommandError, DockwallError
from dockwall.explain.containers import read_containers
from dockwall.explain.host import LiveHost
from dockwall.explain.hostnet import HostNet, parse_addresses, parse_routes
from dockwall.explain.iptables.ipsets import LiveIpSets, parse_ipset_save
from dockwall.explain.iptables.parse import parse_iptables_save
from dockwall.explain.live_ruleset import LiveRuleset
from dockwall.explain.netfilter import Origin, Table
from dockwall.explain.nft.parse import parse_nft_json
from dockwall.runner import Runner

SAVE_COMMANDS: tuple[tuple[str, int, Origin], ...] = (
    ("iptables-nft-save", 4, "iptables-nft"),
    ("ip6tables-nft-save", 6, "iptables-nft"),
    ("iptables-legacy-save", 4, "iptables-legacy"),
    ("ip6tables-legacy-save", 6, "iptables-legacy"),
)
SYSCTLS = {
    "forward4": "/proc/sys/net/ipv4/ip_forward",
    "forward6": "/proc/sys/net/ipv6/conf/all/forwarding",
    "brnf4": "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "brnf6": "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
    "ct_count": "/proc/sys/net/netfilter/nf_conntrack_count",
    "ct_max": "/proc/sys/net/netfilter/nf_conntrack_max",
}


def one_shot() -> None:
    """For `dockwall explain` and `audit`, processes that read the host once and exit.

    Parsing a big ruleset makes ~100,000 acyclic objects; with the cyclic collector on,
    its next pass walks all of them (15-25 ms at 10,000 rules) to free nothing. The
    process ends a moment later and frees everything anyway, so it runs without it.
    """
    gc.disable()


def output(runner: Runner, argv: list[str], notes: list[str]) -> str | None:
    try:
        return runner.run(argv, timeout=30).stdout
    except CommandError as exc:
        notes.append(f"{argv[0]}: {exc.stderr.strip() or 'failed'}")
        return None


def read_tables(runner: Runner, notes: list[str]) -> tuple[list[Table], dict[str, int]]:
    tables: list[Table] = []
    for command, version, origin in SAVE_COMMANDS:
        text = output(runner, [command], notes)
        if text:
            tables += parse_iptables_save(text, version, origin, lazy=True)
    skip = {(t.family, t.name) for t in tables if t.origin == "iptables-nft"}
    text = output(runner, ["nft", "-j", "list", "ruleset"], notes)
    if text:
        tables += parse_nft_json(text, skip)
    sources: dict[str, int] = {}
    for table in tables:
        key = table.origin if table.origin != "nftables" else "nftables"
        sources[key] = sources.get(key, 0) + table.rule_count()
    return tables, sources


def read_ipsets(runner: Runner) -> LiveIpSets:
    """The sets `-m set` rules look up. Without ipset (or when it fails) there are none to
    read, and every set match stays unknown: the reason is kept, not added to the notes,
    as most hosts without ipset have no rule that needs it."""
    try:
        result = runner.run(["ipset", "save"], check=False, timeout=30)
    except CommandError as exc:
        return LiveIpSets({}, f"`ipset save` failed: {exc.stderr.strip() or exc}")
    if result.returncode != 0:
        reason = result.stderr.strip() or f"exit status {result.returncode}"
        return LiveIpSets({}, f"`ipset save` failed: {reason}")
    return parse_ipset_save(result.stdout)


def read_sysctls(runner: Runner) -> dict[str, int | None]:
    values: dict[str, int | None] = {}
    for key, path in SYSCTLS.items():
        try:
            values[key] = int(runner.run(["cat", path], timeout=10).stdout.strip())
        except (CommandError, ValueError):
            values[key] = None
    return values


def read_host_net(runner: Runner, notes: list[str]) -> HostNet:
    addresses = parse_addresses(output(runner, ["ip", "-j", "addr"], notes) or "[]")
    routes = parse_routes(
        output(runner, ["ip", "-j", "-4", "route", "show", "table", "all"], notes) or "[]", 4
    )
    routes += parse_routes(
        output(runner, ["ip", "-j", "-6", "route", "show", "table", "all"], notes) or "[]", 6
    )
    return HostNet(addresses, routes)


def gather(runner: Runner, docker_client: Callable[[], Any] | None = None) -> LiveHost:
    """The whole host as explain and audit see it; `docker_client` makes a docker SDK client."""
    notes: list[str] = []
    tables, sources = read_tables(runner, notes)
    net = read_host_net(runner, notes)
    ipsets = read_ipsets(runner)
    sysctl = read_sysctls(runner)
    containers = []
    if docker_client is not None:
        try:
            containers = read_containers(docker_client)
        except DockwallError as exc:
            notes.append(str(exc))
    count, limit = sysctl["ct_count"], sysctl["ct_max"]
    return LiveHost(
        ruleset=LiveRuleset(tables),
        net=net,
        containers=containers,
        forwarding={4: sysctl["forward4"] != 0, 6: sysctl["forward6"] != 0},
        bridge_nf={4: bool(sysctl["brnf4"]), 6: bool(sysctl["brnf6"])},
        conntrack=(count, limit) if count is not None and limit else None,
        rule_sources=sources,
        notes=notes,
        ipsets=ipsets,
    )
