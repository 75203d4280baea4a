"""`dockwall export ufw`: ufw in front of Docker, the ufw-docker way.

`ufw allow` acts on INPUT, which published ports never pass (they are DNATed and
forwarded). The `after.rules` hook below sends Docker's DOCKER-USER chain through ufw's
`ufw-user-forward`, lets replies and the containers' own connections out, and drops new
connections to the Docker networks that no `ufw route allow` admits. The route rules
match after DNAT, so they name the container port and, with `--live`, the container's
address: an address that goes stale when the container is recreated (dockwall follows
containers; ufw does not).
"""

from __future__ import annotations

import shlex

from dockwall.export.view import (
    Exported,
    View,
    Warnings,
    Workload,
    container_ports,
    label_rule_warnings,
    unmapped_host_ports,
    without_excepts,
)
from dockwall.model.state import Container
from dockwall.policy import IngressRule, Network, PortRange

PRIVATE4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
MARK_BEGIN = "# BEGIN UFW AND DOCKER"
MARK_END = "# END UFW AND DOCKER"
Command = list[str]


def export_ufw(view: View, source: str) -> Exported:
    warnings = Warnings()
    label_rule_warnings(view, warnings)
    view = without_excepts(view, warnings, "this ufw export")
    commands = route_commands(view, warnings)
    return Exported(script(commands, source), tuple(warnings.items))


def after_rules() -> str:
    """The block ufw-docker appends to /etc/ufw/after.rules (IPv4)."""
    lines = [
        MARK_BEGIN,
        "*filter",
        ":ufw-user-forward - [0:0]",
        ":ufw-docker-logging-deny - [0:0]",
        ":DOCKER-USER - [0:0]",
        "-A DOCKER-USER -j ufw-user-forward",
        *(f"-A DOCKER-USER -j RETURN -s {net}" for net in PRIVATE4),
        "-A DOCKER-USER -p udp -m udp --sport 53 --dport 1024:65535 -j RETURN",
        *(
            f"-A DOCKER-USER -j ufw-docker-logging-deny -p tcp -m tcp "
            f"--tcp-flags FIN,SYN,RST,ACK SYN -d {net}"
            for net in PRIVATE4
        ),
        *(
            f"-A DOCKER-USER -j ufw-docker-logging-deny -p udp -m udp --dport 0:32767 -d {net}"
            for net in PRIVATE4
        ),
        "-A DOCKER-USER -j RETURN",
        "-A ufw-docker-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG "
        '--log-prefix "[UFW DOCKER BLOCK] "',
        "-A ufw-docker-logging-deny -j DROP",
        "COMMIT",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def route_commands(view: View, warnings: Warnings) -> list[Command]:
    """`ufw route allow` argument lists (without the leading `ufw`)."""
    commands: list[Command] = []
    for workload in view.workloads:
        commands += _workload_commands(workload, view, warnings)
        if workload.egress.restricted and not workload.egress.defaulted:
            warnings.add(
                workload.where,
                "egress is not exported: with the ufw-docker hook containers may connect "
                "anywhere (run dockwall to restrict it)",
            )
    if view.defaults.egress == "deny":
        warnings.add("defaults", "egress: deny is not exported (ufw-docker lets containers out)")
    if view.defaults.ingress == "allow":
        if not view.live:
            warnings.add(
                "defaults",
                "ingress: allow needs --live to know the unmatched containers' ports: "
                "not exported, so ufw closes them",
            )
        for container in view.unmatched:
            commands += _open_container(container, None, "dockwall defaults", warnings)
    if any(_has_ipv6(c) for c in commands):
        warnings.add(
            "ufw",
            "the DOCKER-USER hook in after.rules is IPv4 only; published IPv6 ports are "
            "not governed by these rules (dockwall covers both families)",
        )
    return [list(c) for c in dict.fromkeys(tuple(c) for c in commands)]


def _has_ipv6(command: Command) -> bool:
    """Whether a route rule admits IPv6: an IPv6 end, or `any` on both ends."""
    ends = [command[command.index("from") + 1], command[command.index("to") + 1]]
    return any(":" in end for end in ends) or ends == ["any", "any"]


def _workload_commands(workload: Workload, view: View, warnings: Warnings) -> list[Command]:
    direction, comment = workload.ingress, f"dockwall {workload.selector.describe()}"
    if direction.mode == "deny" or (view.live and not workload.containers):
        return []
    if direction.mode == "allow":
        if not view.live:
            warnings.add(
                workload.where,
                "ingress: allow needs --live to know the container's ports: not exported",
            )
        return [
            c for container in workload.containers for c in _open_container(
                container, None, comment, warnings)
        ]  # fmt: skip
    commands: list[Command] = []
    for rule in direction.rules:
        commands += _rule_commands(rule, workload, view, comment, warnings)
    return commands


def _rule_commands(
    rule: IngressRule, workload: Workload, view: View, comment: str, warnings: Warnings
) -> list[Command]:
    sources = rule.cidr_sources
    if sources == ():
        return []
    ports = container_ports(rule, workload)
    if ports is None:
        warnings.add(
            workload.where,
            "an ingress rule for every published port needs --live to name the "
            "containers: not exported",
        )
        return []
    if not ports:
        return []
    for port in unmapped_host_ports(rule, workload):
        warnings.add(
            workload.where,
            f"host port {port} is taken as the container port (ufw route rules match after "
            "DNAT): give container_port, or export with --live",
        )
    if not view.live:
        warnings.add(
            workload.where,
            "without --live the rules name no container address, so they admit these "
            "ports on every container",
        )
        return _commands(sources, ["any"], ports, comment, warnings, workload.where)
    warnings.add(
        workload.where,
        "rules name the containers' current addresses: they go stale when a container is "
        "recreated (re-export, or let dockwall follow them)",
    )
    commands: list[Command] = []
    for container in workload.containers:
        commands += _commands(
            sources, _addresses(container), ports, comment, warnings, workload.where
        )
    return commands


def _open_container(
    container: Container, sources: tuple[Network, ...] | None, comment: str, warnings: Warnings
) -> list[Command]:
    ports = tuple(
        PortRange(proto="udp" if p.proto == "udp" else "tcp", first=p.container_port)
        for p in container.ports
    )
    if not ports:
        return []
    return _commands(
        sources, _addresses(container), ports, comment, warnings, f"container {container.name}"
    )


def _addresses(container: Container) -> list[str]:
    return [str(a) for attachment in container.attachments for a in attachment.addresses]


def _commands(
    sources: tuple[Network, ...] | None,
    destinations: list[str],
    ports: tuple[PortRange, ...],
    comment: str,
    warnings: Warnings,
    where: str,
) -> list[Command]:
    """One `route allow` per source, destination and port, same family only."""
    origins = ["any"] if sources is None else [str(s) for s in sources]
    commands: list[Command] = []
    for port in ports or (None,):
        if port is not None and port.proto == "icmp":
            warnings.add(where, "ufw route rules cannot match ICMP: the icmp port is left out")
            continue
        for origin in origins:
            for destination in destinations:
                if _mixed(origin, destination):
                    continue
                commands.append(_command(origin, destination, port, comment))
    return commands


def _mixed(origin: str, destination: str) -> bool:
    return "any" not in (origin, destination) and (":" in origin) != (":" in destination)


def _command(origin: str, destination: str, port: PortRange | None, comment: str) -> Command:
    command = ["route", "allow"]
    if port is not None:
        command += ["proto", port.proto]
    command += ["from", origin, "to", destination]
    if port is not None:
        span = str(port.first) if port.first == port.last else f"{port.first}:{port.last}"
        command += ["port", span]
    return [*command, "comment", comment]


def script(commands: list[Command], source: str) -> str:
    lines = [
        "#!/bin/sh",
        f"# dockwall export ufw, from {source}: ufw in front of Docker (the ufw-docker way).",
        "set -e",
        f"if ! grep -q '^{MARK_BEGIN}' /etc/ufw/after.rules; then",
        "cat >> /etc/ufw/after.rules <<'EOF'",
        after_rules().rstrip("\n"),
        "EOF",
        "fi",
        *(shlex.join(["ufw", *command]) for command in commands),
        "ufw reload",
    ]
    return "\n".join(lines) + "\n"
