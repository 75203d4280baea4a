"""`dockwall export aws`: the security group rules the Docker host needs in front of it.

A security group belongs to the instance, not to a container, and only allows. So its
ingress is the union of the published host ports by source, and its egress the union of
what every container may reach (warned when that widens some container's egress);
container-to-container traffic never leaves the host and needs no rule. AWS counts rules
per group, direction and address family, at most 60 each by default: an export that
needs more fails and says how many it would need.

Three forms of the same rules: the `--ip-permissions` JSON of
`aws ec2 authorize-security-group-ingress/egress`, a shell script with those command
lines, and Terraform `aws_vpc_security_group_ingress_rule` / `_egress_rule` resources.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any, Literal

from dockwall.errors import DockwallError
from dockwall.export.view import (
    Exported,
    View,
    Warnings,
    Workload,
    families,
    host_ports,
    label_rule_warnings,
    without_excepts,
)
from dockwall.policy import Network, PortRange

AwsFormat = Literal["json", "cli", "terraform"]
RULE_LIMIT = 60
DIRECTIONS = ("ingress", "egress")
ALL = "-1"
ANYWHERE = ("0.0.0.0/0", "::/0")
_DESCRIPTION_BAD = re.compile(r"[^A-Za-z0-9. _\-:/()#,@\[\]+=&;{}!$*]")


@dataclass(frozen=True, order=True)
class SgRule:
    """One security group rule: a protocol and port span to or from one CIDR."""

    proto: str
    first: int | None
    last: int | None
    family: int
    cidr: str
    description: str

    @property
    def key(self) -> tuple[str, int | None, int | None, str]:
        """What the rule admits, whoever it is for."""
        return self.proto, self.first, self.last, self.cidr

    @property
    def ip_protocol(self) -> str:
        if self.proto == "icmp":
            return "icmpv6" if self.family == 6 else "icmp"
        return self.proto


@dataclass(frozen=True)
class Rules:
    ingress: tuple[SgRule, ...]
    egress: tuple[SgRule, ...]


def export_aws(
    view: View, source: str, fmt: AwsFormat = "cli", group_id: str = "$SECURITY_GROUP_ID"
) -> Exported:
    """The rules in the requested form; DockwallError when AWS's limits are exceeded."""
    warnings = Warnings()
    label_rule_warnings(view, warnings)
    view = without_excepts(view, warnings, "AWS security groups (no deny rules)")
    rules = Rules(ingress_rules(view, warnings), egress_rules(view, warnings))
    check_limits(rules)
    if fmt == "json":
        text = json.dumps(permissions_document(rules), indent=2) + "\n"
    elif fmt == "terraform":
        text = terraform(rules, source)
    else:
        text = command_lines(rules, source, group_id)
    return Exported(text, tuple(warnings.items))


def ingress_rules(view: View, warnings: Warnings) -> tuple[SgRule, ...]:
    """Published host ports by source, for every workload and the defaults."""
    found: list[SgRule] = []
    for workload in view.workloads:
        found += _workload_ingress(workload, view, warnings)
    if view.defaults.ingress == "allow":
        if not view.live:
            warnings.add(
                "defaults",
                "ingress: allow opens every published port of unmatched containers; which "
                "ports those are is known only with --live: not exported",
            )
        for container in view.unmatched:
            found += _inbound(
                _published_ranges(container.ports), None, f"defaults {container.name}"
            )
    return _unique(found)


def _workload_ingress(workload: Workload, view: View, warnings: Warnings) -> list[SgRule]:
    direction, label = workload.ingress, workload.selector.describe()
    if direction.mode == "deny" or (view.live and not workload.containers):
        return []
    if direction.mode == "allow":
        if not view.live:
            warnings.add(
                workload.where,
                "ingress: allow opens every published port; which ports those are is known "
                "only with --live: not exported",
            )
        return _inbound(_published_ranges(workload.published), None, label)
    found: list[SgRule] = []
    for rule in direction.rules:
        ports = host_ports(rule, workload)
        if ports is None:
            warnings.add(
                workload.where,
                "an ingress rule without host ports needs --live to know the published "
                "ports: not exported",
            )
            continue
        sources = rule.cidr_sources
        if sources == ():
            continue
        found += _inbound(ports, sources, label)
    return found


def _inbound(
    ports: tuple[PortRange, ...], networks: tuple[Network, ...] | None, label: str
) -> list[SgRule]:
    """Ingress opens only the ports it names: no published port means no rule."""
    return _open(ports, networks, label) if ports else []


def _published_ranges(ports: Any) -> tuple[PortRange, ...]:
    return tuple(
        PortRange(proto="udp" if p.proto == "udp" else "tcp", first=p.host_port, last=p.host_port)
        for p in ports
    )


def egress_rules(view: View, warnings: Warnings) -> tuple[SgRule, ...]:
    """The union of what the host's containers may reach."""
    per_workload: dict[str, tuple[SgRule, ...]] = {}
    for workload in view.workloads:
        if not view.live or workload.containers:
            per_workload[workload.where] = _workload_egress(workload)
        if workload.egress.mode == "list" and any(r.fqdns for r in workload.egress.rules):
            warnings.add(
                workload.where,
                "a security group cannot name a domain: the to_fqdn part of its egress is "
                "left out (dockwall on the host enforces it)",
            )
    if view.defaults.egress == "allow" and (not view.live or view.unmatched):
        per_workload["defaults"] = tuple(_open((), None, "defaults"))
    elif view.defaults.egress == "deny" and (not view.live or view.unmatched):
        per_workload["defaults"] = ()
    union = _unique([rule for rules in per_workload.values() for rule in rules])
    if _allows_all(union):
        union = tuple(r for r in union if r.proto == ALL and r.cidr in ANYWHERE)
    wider = [where for where, rules in per_workload.items() if not _admits(rules, union)]
    if wider and union:
        warnings.add(
            "egress",
            "a security group allows the union of every container's egress, so it is "
            f"wider than the policy for {', '.join(wider)}: dockwall on the host keeps "
            "each container to its own rules",
        )
    return union


def _admits(rules: tuple[SgRule, ...], union: tuple[SgRule, ...]) -> bool:
    """Whether a workload's own rules already allow everything in the union."""
    return _allows_all(rules) or {r.key for r in union} <= {r.key for r in rules}


def _workload_egress(workload: Workload) -> tuple[SgRule, ...]:
    direction, label = workload.egress, workload.selector.describe()
    if direction.mode == "deny":
        return ()
    if direction.mode == "allow":
        return tuple(_open((), None, label))
    found: list[SgRule] = []
    for rule in direction.rules:
        destinations = rule.cidr_destinations
        if destinations == ():
            continue
        found += _open(rule.ports, destinations, label)
    return _unique(found)


def _open(
    ports: tuple[PortRange, ...], networks: tuple[Network, ...] | None, label: str
) -> list[SgRule]:
    """A rule per port span and CIDR; no ports means every protocol."""
    description = _DESCRIPTION_BAD.sub("_", f"dockwall {label}")[:255]
    spans: list[tuple[str, int | None, int | None]] = [
        (p.proto, p.first, p.last) for p in ports
    ] or [(ALL, None, None)]
    return [
        SgRule(proto, first, last, family, cidr, description)
        for proto, first, last in spans
        for family, cidrs in families(networks).items()
        for cidr in cidrs
    ]


def _unique(rules: list[SgRule]) -> tuple[SgRule, ...]:
    """One rule per protocol, ports and CIDR, whoever asked for it first."""
    seen: dict[tuple[str, int | None, int | None, str], SgRule] = {}
    for rule in rules:
        seen.setdefault(rule.key, rule)
    return tuple(seen.values())


def check_limits(rules: Rules) -> None:
    """AWS refuses the 61st rule of a direction and family; say so before it does."""
    over = []
    for direction in DIRECTIONS:
        for family in (4, 6):
            count = sum(r.family == family for r in getattr(rules, direction))
            if count > RULE_LIMIT:
                over.append(f"{count} {direction} IPv{family} rules")
    if over:
        raise DockwallError(
            f"aws: the security group would need {' and '.join(over)}; AWS allows "
            f"{RULE_LIMIT} per group, direction and address family: merge sources into "
            "wider CIDRs, split the rules over several groups, or raise the quota"
        )


def permissions(rules: tuple[SgRule, ...]) -> list[dict[str, Any]]:
    """The IpPermissions list, one item per protocol and port span."""
    grouped: dict[tuple[str, int | None, int | None], dict[str, Any]] = {}
    for rule in rules:
        key = (rule.ip_protocol, rule.first, rule.last)
        item = grouped.get(key)
        if item is None:
            item = grouped[key] = {"IpProtocol": rule.ip_protocol, **_port_fields(rule)}
        if rule.family == 4:
            item.setdefault("IpRanges", []).append(
                {"CidrIp": rule.cidr, "Description": rule.description}
            )
        else:
            item.setdefault("Ipv6Ranges", []).append(
                {"CidrIpv6": rule.cidr, "Description": rule.description}
            )
    return list(grouped.values())


def _port_fields(rule: SgRule) -> dict[str, int]:
    if rule.proto == ALL:
        return {}
    if rule.proto == "icmp":
        return {"FromPort": -1, "ToPort": -1}
    return {"FromPort": rule.first or 0, "ToPort": rule.last or 0}


def permissions_document(rules: Rules) -> dict[str, list[dict[str, Any]]]:
    return {d: permissions(getattr(rules, d)) for d in DIRECTIONS}


def command_lines(rules: Rules, source: str, group_id: str) -> str:
    group = f'"{group_id}"' if group_id.startswith("$") else shlex.quote(group_id)
    lines = [
        "#!/bin/sh",
        f"# dockwall export aws, from {source}. Security groups only allow: these add",
        "# what the host's published ports and containers need.",
        "set -e",
    ]
    if not _allows_all(rules.egress):
        lines.append("# a new group allows all egress; remove that rule so the ones below count:")
        default = [{"IpProtocol": ALL, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        lines.append(_command("revoke-security-group-egress", group, default))
    for direction in DIRECTIONS:
        items = permissions(getattr(rules, direction))
        if items:
            lines.append(_command(f"authorize-security-group-{direction}", group, items))
    return "\n".join(lines) + "\n"


def _allows_all(rules: tuple[SgRule, ...]) -> bool:
    return {"0.0.0.0/0", "::/0"} <= {r.cidr for r in rules if r.proto == ALL}


def _command(action: str, group: str, items: list[dict[str, Any]]) -> str:
    text = json.dumps(items, separators=(",", ":"))
    return f"aws ec2 {action} --group-id {group} --ip-permissions {shlex.quote(text)}"


def terraform(rules: Rules, source: str) -> str:
    blocks = [
        f"# dockwall export aws --format terraform, from {source}.",
        'variable "security_group_id" {\n  type = string\n}',
    ]
    for direction in DIRECTIONS:
        for number, rule in enumerate(getattr(rules, direction), start=1):
            blocks.append(_resource(direction, number, rule))
    return "\n\n".join(blocks) + "\n"


def _resource(direction: str, number: int, rule: SgRule) -> str:
    cidr_key = "cidr_ipv4" if rule.family == 4 else "cidr_ipv6"
    fields = {
        "security_group_id": "var.security_group_id",
        "description": json.dumps(rule.description),
        "ip_protocol": json.dumps(rule.ip_protocol),
        **{k.replace("Port", "_port").lower(): str(v) for k, v in _port_fields(rule).items()},
        cidr_key: json.dumps(rule.cidr),
    }
    body = "\n".join(f"  {key} = {value}" for key, value in fields.items())
    kind = f"aws_vpc_security_group_{direction}_rule"
    return f'resource "{kind}" "dockwall_{direction}_{number}" {{\n{body}\n}}'
