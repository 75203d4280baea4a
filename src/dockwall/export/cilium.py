"""`to_fqdn` for `dockwall export k8s`: a CiliumNetworkPolicy with `toFQDNs`.

A plain NetworkPolicy cannot name a domain, so each entry with name rules gets a
CiliumNetworkPolicy (cilium.io/v2) beside its NetworkPolicy: the same pods, `toFQDNs`
with the same patterns and ports, and the DNS rule on kube-dns through which Cilium's
proxy learns the addresses (only the entry's own patterns when it sets
`restrict_dns`, else every name). Patterns map one to one: a plain name is
`matchName`, `*.x` and `**.x` are `matchPattern` (Cilium gives them the meaning
dockwall does). Both kinds of policy are allow-lists and add up, so nothing opens
that either would not open alone.
"""

from __future__ import annotations

from typing import Any

from dockwall.export.view import Direction
from dockwall.policy import EgressRule, PortRange

Document = dict[str, Any]

KUBE_DNS = {
    "matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}
}


def selector_of(pattern: str) -> Document:
    return {"matchPattern": pattern} if pattern.startswith("*") else {"matchName": pattern}


def to_ports(ports: tuple[PortRange, ...]) -> list[Document]:
    """Cilium's toPorts; ICMP has no place there and is left out (the caller warns)."""
    found: list[Document] = []
    for port in ports:
        if port.proto == "icmp" or port.first is None:
            continue
        item: Document = {"port": str(port.first), "protocol": port.proto.upper()}
        if port.last is not None and port.last != port.first:
            item["endPort"] = port.last
        found.append(item)
    return [{"ports": found}] if found else []


def fqdn_rules(direction: Direction[EgressRule]) -> list[EgressRule]:
    return [r for r in direction.rules if r.fqdns] if direction.mode == "list" else []


def cilium_document(
    name: str,
    where: str,
    labels: dict[str, str],
    rules: list[EgressRule],
    restrict_dns: bool,
) -> Document:
    patterns = sorted({p for r in rules for p in r.fqdns})
    dns_names = [selector_of(p) for p in patterns] if restrict_dns else [{"matchPattern": "*"}]
    egress: list[Document] = [
        {
            "toEndpoints": [KUBE_DNS],
            "toPorts": [
                {"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": dns_names}}
            ],
        }
    ]
    for rule in rules:
        item: Document = {"toFQDNs": [selector_of(p) for p in rule.fqdns]}
        ports = to_ports(rule.ports)
        if ports:
            item["toPorts"] = ports
        egress.append(item)
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "annotations": {"dockwall/entry": where}},
        "spec": {"endpointSelector": {"matchLabels": labels}, "egress": egress},
    }
