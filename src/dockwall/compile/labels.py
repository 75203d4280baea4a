"""Rules from `dockwall.ingress` / `dockwall.egress` container labels, trusted only so far.

Only labels set on the container itself count (an image must not open its own
firewall), and the policy file caps what they may allow. Labels are untrusted input:
a bad one is a PolicyError naming the container and the label.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockwall.errors import Location, PolicyError
from dockwall.model.state import Container, Network
from dockwall.policy import (
    EgressPolicy,
    EgressRule,
    IngressPolicy,
    IngressRule,
    LabelPolicy,
    parse_label_rules,
)
from dockwall.policy.fqdn import covers
from dockwall.policy.rules import list_names

INGRESS_LABEL = "dockwall.ingress"
EGRESS_LABEL = "dockwall.egress"


@dataclass(frozen=True)
class LabelRules:
    """What a container's own labels ask for; None where it has no such label."""

    ingress: IngressPolicy | None = None
    egress: EgressPolicy | None = None


def source(container: Container, label: str) -> str:
    return f"label {label} on container {container.name}"


def intersect(
    networks: tuple[Network, ...] | None, cap: tuple[Network, ...] | None
) -> tuple[Network, ...] | None:
    """The part of `networks` inside `cap`: CIDRs either contain each other or are disjoint."""
    if cap is None:
        return networks
    if networks is None:
        return cap
    inside: list[Network] = []
    for net in networks:
        for limit in cap:
            if net.version != limit.version:
                continue
            if net.subnet_of(limit):  # type: ignore[arg-type]
                inside.append(net)
            elif limit.subnet_of(net):  # type: ignore[arg-type]
                inside.append(limit)
    return tuple(dict.fromkeys(inside))


def check_containers(container: Container, label: str, named: bool, policy: LabelPolicy) -> None:
    if named and not policy.containers:
        raise PolicyError(
            Location(source(container, label)),
            label.removeprefix("dockwall."),
            "labels may not name other containers (set `labels: {containers: true}` in the "
            "policy to allow it)",
        )


def check_capped_lists(
    container: Container,
    label: str,
    rules: tuple[IngressRule, ...] | tuple[EgressRule, ...],
    cap: tuple[Network, ...] | None,
) -> None:
    """Under a cap labels allow CIDRs inside it only: a list's contents are nothing a
    label writer can be held to, so a label allowing a list is refused, not narrowed
    silently (a list in `except` only narrows, and stays)."""
    if cap is None:
        return
    for rule in rules:
        given = rule.sources if isinstance(rule, IngressRule) else rule.destinations
        named = list_names(given)
        if named:
            raise PolicyError(
                Location(source(container, label)),
                label.removeprefix("dockwall."),
                "labels are capped to addresses (labels.ingress_from / egress_to): a label "
                f"cannot allow list:{named[0]}",
            )


def capped_ingress(rule: IngressRule, policy: LabelPolicy) -> IngressRule:
    if policy.ingress_from is None:
        return rule
    sources = intersect(rule.cidr_sources, policy.ingress_from)
    return rule.model_copy(update={"sources": sources})


def capped_egress(rule: EgressRule, policy: LabelPolicy) -> EgressRule:
    """CIDRs cut to `egress_to`; domain names kept only where `egress_fqdn` covers them."""
    if policy.egress_fqdn is not None and rule.fqdns:
        caps = policy.egress_fqdn
        kept = tuple(p for p in rule.fqdns if any(covers(cap, p) for cap in caps))
        rule = rule.model_copy(update={"fqdns": kept})
    if policy.egress_to is None:
        return rule
    destinations = intersect(rule.cidr_destinations, policy.egress_to)
    return rule.model_copy(update={"destinations": destinations})


def capped_all(direction: str, policy: LabelPolicy) -> IngressPolicy | EgressPolicy | None:
    """A label saying `allow` within caps is a rule over the capped addresses."""
    if direction == "ingress" and policy.ingress_from is not None:
        return IngressPolicy(mode="list", rules=(IngressRule(sources=policy.ingress_from),))
    if direction == "egress" and policy.egress_to is not None:
        return EgressPolicy(mode="list", rules=(EgressRule(destinations=policy.egress_to),))
    return None


def read_ingress(container: Container, policy: LabelPolicy) -> IngressPolicy | None:
    value = container.own_labels.get(INGRESS_LABEL)
    if value is None:
        return None
    parsed = parse_label_rules(value, source(container, INGRESS_LABEL), "ingress")
    if parsed.mode == "allow":
        capped = capped_all("ingress", policy)
        return capped if isinstance(capped, IngressPolicy) else parsed
    check_containers(container, INGRESS_LABEL, any(r.from_containers for r in parsed.rules), policy)
    check_capped_lists(container, INGRESS_LABEL, parsed.rules, policy.ingress_from)
    return parsed.model_copy(
        update={"rules": tuple(capped_ingress(r, policy) for r in parsed.rules)}
    )


def read_egress(container: Container, policy: LabelPolicy) -> EgressPolicy | None:
    value = container.own_labels.get(EGRESS_LABEL)
    if value is None:
        return None
    parsed = parse_label_rules(value, source(container, EGRESS_LABEL), "egress")
    if parsed.mode == "allow":
        capped = capped_all("egress", policy)
        return capped if isinstance(capped, EgressPolicy) else parsed
    check_containers(container, EGRESS_LABEL, any(r.to_containers for r in parsed.rules), policy)
    check_capped_lists(container, EGRESS_LABEL, parsed.rules, policy.egress_to)
    return parsed.model_copy(
        update={"rules": tuple(capped_egress(r, policy) for r in parsed.rules)}
    )


def label_rules(container: Container, policy: LabelPolicy) -> LabelRules:
    if not policy.trust:
        return LabelRules()
    return LabelRules(read_ingress(container, policy), read_egress(container, policy))
