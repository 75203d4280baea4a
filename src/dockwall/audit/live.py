"""Checks on a live host. Where a question is "does this get through", the simulator
answers it, so audit and explain can never disagree."""

from __future__ import annotations

from collections.abc import Iterator

from dockwall.audit.findings import Finding, ingress_snippet
from dockwall.errors import DockwallError
from dockwall.explain.addresses import format_address
from dockwall.explain.endpoints import host_address, inbound_interface
from dockwall.explain.host import LiveContainer, LiveHost, Published
from dockwall.explain.netfilter import Chain, CtState, Drop, Port, Rule, Table
from dockwall.explain.packet import first_packet
from dockwall.explain.simulate import explain_connection
from dockwall.runner import Runner

PROBE_SOURCES = {4: int.from_bytes(bytes([192, 0, 2, 254])), 6: (0x20010DB8 << 96) | 0xFE}
ALL_ADDRESSES = ("", "0.0.0.0", "::")
CONNTRACK_WARN = 0.8


ESTABLISHED_TIMEOUT = "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established"
IDLE_KEEPALIVE = 7200


def audit_host(state: LiveHost, established_timeout: int | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS:
        findings += check(state)
    return findings + conntrack_timeout(established_timeout)


def read_established_timeout(runner: Runner) -> int | None:
    """The conntrack timeout of an idle established TCP flow; None where unreadable."""
    try:
        return int(runner.run(["cat", ESTABLISHED_TIMEOUT], timeout=10).stdout.strip())
    except (DockwallError, ValueError):
        return None


def conntrack_timeout(timeout: int | None, keepalive: int = IDLE_KEEPALIVE) -> list[Finding]:
    """An idle WebSocket outliving its conntrack entry is cut: its next packet matches
    no flow, is not a SYN, and a stateful firewall (dockwall's, Docker's) drops it.

    `keepalive` is the longest idle gap to expect: 7200 s is Linux's tcp_keepalive_time,
    the first probe of a connection whose application sends no pings of its own.
    """
    if timeout is None or timeout >= keepalive:
        return []
    return [
        Finding(
            "conntrack-timeout-short", "medium",
            f"nf_conntrack_tcp_timeout_established is {timeout} s, shorter than an idle "
            f"connection's keep-alive ({keepalive} s without application pings): idle "
            "WebSockets and long polls lose their conntrack entry and are cut",
            f"net.netfilter.nf_conntrack_tcp_timeout_established={timeout}",
            f"# keep idle flows tracked longer than the longest keep-alive interval:\n"
            f"sysctl -w net.netfilter.nf_conntrack_tcp_timeout_established={keepalive * 3}\n"
            "# or make the application ping more often than every "
            f"{max(timeout // 2, 1)} s",
        )
    ]  # fmt: skip


def published(state: LiveHost) -> Iterator[tuple[LiveContainer, Published]]:
    for container in state.containers:
        for binding in container.published:
            yield container, binding


def chains_on(state: LiveHost, hook: str) -> Iterator[tuple[Table, Chain]]:
    for version in (4, 6):
        yield from state.ruleset.base_chains(hook, version)


def port_of(rule: Rule) -> set[int]:
    ports: set[int] = set()
    for condition in rule.conditions:
        if (
            isinstance(condition.test, Port)
            and condition.test.field == "dport"
            and not condition.negate
        ):
            for low, high in condition.test.ranges:
                if high - low < 1024:
                    ports.update(range(low, high + 1))
    return ports


def input_rules_for_published_ports(state: LiveHost) -> list[Finding]:
    host_ports = {b.host_port: c.name for c, b in published(state)}
    findings: list[Finding] = []
    for table, chain in chains_on(state, "input"):
        for rule in chain.rules:
            for port in sorted(port_of(rule) & set(host_ports)):
                findings.append(
                    Finding(
                        "input-rule-on-published-port",
                        "high",
                        f"this INPUT rule looks like it guards published port {port}, but "
                        "published ports are DNATed and go through FORWARD: it never sees them",
                        f"{table.label} {chain.name}: {rule.text}",
                        ingress_snippet(host_ports[port], f"{port}/tcp"),
                    )
                )
    return findings


def ufw_with_published_ports(state: LiveHost) -> list[Finding]:
    ufw = any(name.startswith("ufw-") for name in state.ruleset.chain_names())
    ports = sorted({f"{b.host_port}/{b.proto}" for _, b in published(state)})
    if not ufw or not ports:
        return []
    return [
        Finding(
            "ufw-with-docker", "high",
            "ufw is active while Docker publishes ports: `ufw allow/deny` acts on INPUT, "
            "published ports bypass it",
            "ufw chains present; published: " + ", ".join(ports),
            ingress_snippet(next(c.name for c, _ in published(state)), ports[0]),
        )
    ]  # fmt: skip


def open_published_ports(state: LiveHost) -> list[Finding]:
    """Simulates a connection from a documentation address to every all-address binding."""
    findings: list[Finding] = []
    for container, binding in published(state):
        if binding.host_ip not in ALL_ADDRESSES:
            continue
        for version in versions_of(binding):
            verdict = reachable_from_anywhere(state, version, binding)
            if verdict != "accept":
                continue
            label = f"{binding.host_port}/{binding.proto}"
            v6 = version == 6
            findings.append(
                Finding(
                    "ipv6-published-unfiltered" if v6 else "published-to-all",
                    "high" if v6 else "medium",
                    f"{container.name} publishes {label} on all IPv{version} addresses and no rule "
                    "restricts who may connect",
                    f"container {container.name}: "
                    f"{binding.host_ip or '0.0.0.0'}:{binding.host_port}"
                    f"->{binding.container_port}/{binding.proto}; a connection from "
                    f"{format_address(version, PROBE_SOURCES[version])} is accepted",
                    ingress_snippet(container.name, label),
                    where=container.name,
                )
            )
    return findings


def versions_of(binding: Published) -> tuple[int, ...]:
    return {"": (4, 6), "0.0.0.0": (4,), "::": (6,)}[binding.host_ip]


def reachable_from_anywhere(state: LiveHost, version: int, binding: Published) -> str:
    proto = 6 if binding.proto == "tcp" else 17
    try:
        dst = host_address(state, version)
        packet = first_packet(
            version, proto, PROBE_SOURCES[version], dst, sport=41234, dport=binding.host_port
        )
        packet.iif = inbound_interface(state, version, PROBE_SOURCES[version])
    except DockwallError:
        return "unknown"
    return explain_connection(state, packet, local_origin=False).verdict


def docker_user_drops(state: LiveHost) -> list[Finding]:
    findings: list[Finding] = []
    for table in state.ruleset.tables:
        chain = table.chains.get("DOCKER-USER")
        if chain is None:
            continue
        for rule in chain.rules:
            if exempts_established(rule):
                break
            if isinstance(rule.action, Drop) and not any(
                isinstance(c.test, CtState) for c in rule.conditions
            ):
                findings.append(
                    Finding(
                        "docker-user-drop-without-established",
                        "high",
                        "a DROP in DOCKER-USER runs before Docker's RELATED,ESTABLISHED accept: "
                        "it also drops replies and cuts long-lived connections",
                        f"{table.label} DOCKER-USER: {rule.text}",
                        "# let dockwall write DOCKER-USER (it exempts ESTABLISHED),\n"
                        "# or insert first:\n"
                        "# -I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n"
                        + ingress_snippet("NAME", "PORT/tcp"),
                    )
                )
    return findings


def exempts_established(rule: Rule) -> bool:
    return any(
        isinstance(c.test, CtState) and "ESTABLISHED" in c.test.states and not c.negate
        for c in rule.conditions
    ) and not isinstance(rule.action, Drop)


def docker_backend(state: LiveHost) -> str | None:
    for table in state.ruleset.tables:
        if table.origin != "nftables" and "DOCKER" in table.chains:
            return table.origin
    return None


def legacy_nft_mismatch(state: LiveHost) -> list[Finding]:
    docker = docker_backend(state)
    other = {"iptables-nft": "iptables-legacy", "iptables-legacy": "iptables-nft"}.get(docker or "")
    if other is None or not state.rule_sources.get(other):
        return []
    return [
        Finding(
            "iptables-variant-mismatch", "high",
            f"Docker uses {docker} but {state.rule_sources[other]} rules live in {other}: "
            "both run, but tools that read only one of them see half the firewall",
            f"{docker}: Docker's chains; {other}: {state.rule_sources[other]} rules",
            f"# write rules with {docker}'s tools (or move them there), or let dockwall "
            "manage them:\n" + ingress_snippet("NAME", "PORT/tcp"),
        )
    ]  # fmt: skip


def docker_iptables_disabled(state: LiveHost) -> list[Finding]:
    if not any(True for _ in published(state)) or docker_backend(state) is not None:
        return []
    if any(t.origin == "nftables" and "docker" in t.name for t in state.ruleset.tables):
        return []
    return [
        Finding(
            "docker-iptables-disabled", "high",
            "containers publish ports but Docker wrote no firewall rules (iptables: false?): "
            "nothing DNATs or filters their traffic",
            "no DOCKER chain in any iptables table",
            "# re-enable Docker's iptables integration (remove \"iptables\": false), then:\n"
            + ingress_snippet("NAME", "PORT/tcp"),
        )
    ]  # fmt: skip


def conntrack_full(state: LiveHost) -> list[Finding]:
    if state.conntrack is None:
        return []
    count, limit = state.conntrack
    if count < limit * CONNTRACK_WARN:
        return []
    return [
        Finding(
            "conntrack-near-full", "high",
            f"the conntrack table is {count * 100 // limit}% full; when full, new flows "
            "are dropped (long-lived connections hold their entries for hours)",
            f"nf_conntrack_count={count} nf_conntrack_max={limit}",
            "# raise net.netfilter.nf_conntrack_max or lower nf_conntrack_tcp_timeout_established",
        )
    ]  # fmt: skip


CHECKS = (
    input_rules_for_published_ports,
    ufw_with_published_ports,
    open_published_ports,
    docker_user_drops,
    legacy_nft_mismatch,
    docker_iptables_disabled,
    conntrack_full,
)
