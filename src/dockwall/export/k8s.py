"""`dockwall export k8s`: the policy as Kubernetes NetworkPolicy documents.

One NetworkPolicy per entry (only for the directions the entry sets itself) and one
`dockwall-defaults` policy that selects every pod for the directions the defaults deny.
NetworkPolicies add up: a pod may do what any policy selecting it allows, and is isolated
in a direction as soon as one policy selecting it names that direction. So the defaults
policy only ever denies, and an entry's `allow` is written as an allow-all rule.

Selectors map to the labels Kubernetes recommends: `name: web` selects
`app.kubernetes.io/name: web`; `compose: {project: shop, service: worker}` selects
`app.kubernetes.io/part-of: shop` and `app.kubernetes.io/name: worker`; `label: k=v`
selects `k: v` as written.

Where dockwall's semantics differ the output errs closed, never open: a rule whose every
port or peer cannot be expressed is left out with a warning (an empty `ports` or `from`
would mean "all" in Kubernetes). `defaults.peers: allow` (Docker's behaviour) becomes an
allow-from/to-all-pods rule on every isolated direction; restricted egress always gets a
rule for cluster DNS, as Docker's embedded resolver keeps working under dockwall.

`to_fqdn` rules cannot be a NetworkPolicy: each entry with them also gets a
CiliumNetworkPolicy with `toFQDNs` (export/cilium.py), and its NetworkPolicy keeps only
the rules' CIDR and container parts.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import yaml

from dockwall.export.cilium import cilium_document, fqdn_rules
from dockwall.export.view import (
    Direction,
    Exported,
    View,
    Warnings,
    Workload,
    container_ports,
    label_rule_warnings,
    slug,
    title,
    unmapped_host_ports,
)
from dockwall.policy import ContainerSelector, EgressRule, IngressRule, Network, PortRange
from dockwall.policy.rules import ListRef, Peer

Document = dict[str, Any]

NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
PREFIX = "dockwall-"
SOURCE_NOTE = (
    "ipBlock sees the client's address only where the Service keeps it: "
    "externalTrafficPolicy: Local, or loadBalancerSourceRanges on the load balancer"
)
DNS_RULE: Document = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
ALL_PODS: Document = {"podSelector": {}}

_LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def export_k8s(view: View, source: str) -> Exported:
    """Multi-document YAML for `kubectl apply -f`, and what it could not express."""
    warnings = Warnings()
    label_rule_warnings(view, warnings)
    documents = [doc for w in view.workloads for doc in entry_documents(w, view, warnings)]
    documents += defaults_documents(view)
    _distinct_names(documents)
    header = (
        f"# dockwall export k8s, from {source}.\n"
        f"# Selectors: name -> {NAME_LABEL}; compose project -> {PART_OF_LABEL}, "
        f"service -> {NAME_LABEL}; label -> as written.\n"
        f"# Ingress: {SOURCE_NOTE}.\n"
    )
    body = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False) if documents else ""
    return Exported(header + body, tuple(warnings.items))


class _Dumper(yaml.SafeDumper):
    """Writes shared parts (the DNS rule) out in full: anchors would puzzle a reader."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def defaults_documents(view: View) -> list[Document]:
    """A default-deny policy over every pod for the directions the defaults deny."""
    denied = [d for d in ("ingress", "egress") if getattr(view.defaults, d) == "deny"]
    if not denied:
        return []
    peers = view.defaults.peers == "allow"
    spec: Document = {"podSelector": {}, "policyTypes": [d.capitalize() for d in denied]}
    if "ingress" in denied:
        spec["ingress"] = [{"from": [ALL_PODS]}] if peers else []
    if "egress" in denied:
        spec["egress"] = [DNS_RULE, *([{"to": [ALL_PODS]}] if peers else [])]
    return [_policy("defaults", "defaults: containers no entry matches", spec)]


def entry_documents(workload: Workload, view: View, warnings: Warnings) -> list[Document]:
    """The entry's NetworkPolicy, for the directions it sets itself (the rest follow the
    defaults policy); none when its selector has no Kubernetes spelling."""
    explicit = [d for d in ("ingress", "egress") if not getattr(workload, d).defaulted]
    if not explicit:
        return []
    selector = match_labels(workload.selector)
    if selector is None:
        warnings.add(
            workload.where,
            f"{workload.selector.describe()} is not a valid Kubernetes label selector: "
            "the entry is not exported",
        )
        return []
    peers = view.defaults.peers == "allow"
    spec: Document = {
        "podSelector": {"matchLabels": selector},
        "policyTypes": [d.capitalize() for d in explicit],
    }
    if "ingress" in explicit:
        spec["ingress"] = ingress_rules(workload, peers, warnings)
    if "egress" in explicit:
        spec["egress"] = egress_rules(workload.egress, workload.where, peers, warnings)
    documents = [_policy(title(workload.selector), workload.where, spec)]
    named = fqdn_rules(workload.egress)
    if named:
        name = PREFIX + slug(title(workload.selector) + " fqdn", 60)
        documents.append(
            cilium_document(name, workload.where, selector, named, workload.restrict_dns)
        )
    return documents


def ingress_rules(workload: Workload, peers: bool, warnings: Warnings) -> list[Document]:
    direction = workload.ingress
    if direction.mode == "allow":
        return [{}]
    rules = [
        rule
        for item in direction.rules
        if (rule := ingress_rule(item, workload, warnings)) is not None
    ]
    return [*rules, *([{"from": [ALL_PODS]}] if peers else [])]


def ingress_rule(rule: IngressRule, workload: Workload, warnings: Warnings) -> Document | None:
    """One ingress rule on the container's ports; None when nothing of it is expressible."""
    where = workload.where
    for port in unmapped_host_ports(rule, workload):
        warnings.add(
            where,
            f"host port {port} is taken as the container port (pods have no published "
            "ports): give container_port, or export with --live",
        )
    mapped = container_ports(rule, workload)
    if mapped is None:
        warnings.add(
            where,
            "an ingress rule names no port: dockwall reads it as every published port, "
            "Kubernetes as every port of the pod (name the ports, or export with --live)",
        )
    elif not mapped:
        warnings.add(where, "an ingress rule for every published port: none is published")
        return None
    ports = _ports(mapped or (), where, warnings)
    if ports is None:
        return None
    peers = _peers(rule.from_containers, where, warnings)
    sources = rule.cidr_sources
    document: Document = {}
    if sources is not None or rule.excepts:
        items = ip_blocks(sources, rule.excepts) + peers
        if not items:
            warnings.add(where, "an ingress rule has no expressible source: it is left out")
            return None
        document["from"] = items
    if ports:
        document["ports"] = ports
    return document


def egress_rules(
    direction: Direction[EgressRule], where: str, peers: bool, warnings: Warnings
) -> list[Document]:
    if direction.mode == "allow":
        return [{}]
    rules = [r for item in direction.rules if (r := egress_rule(item, where, warnings)) is not None]
    return [*rules, DNS_RULE, *([{"to": [ALL_PODS]}] if peers else [])]


def egress_rule(rule: EgressRule, where: str, warnings: Warnings) -> Document | None:
    ports = _ports(rule.ports, where, warnings)
    if ports is None:
        return None
    peers = _peers(rule.to_containers, where, warnings)
    destinations = rule.cidr_destinations
    document: Document = {}
    if destinations is not None or rule.excepts:
        items = ip_blocks(destinations, rule.excepts) + peers
        if not items and rule.fqdns:
            return None  # names only: the CiliumNetworkPolicy carries it
        if not items:
            warnings.add(where, "an egress rule has no expressible destination: it is left out")
            return None
        document["to"] = items
    if ports:
        document["ports"] = ports
    return document


def _ports(ports: tuple[PortRange, ...], where: str, warnings: Warnings) -> list[Document] | None:
    """NetworkPolicy ports; [] for every port, None when every listed port is dropped
    (leaving `ports` out would open all of them)."""
    out: list[Document] = []
    for port in ports:
        if port.proto == "icmp" or port.first is None:
            warnings.add(where, "NetworkPolicy has no ICMP: the icmp port is left out")
            continue
        item: Document = {"protocol": port.proto.upper(), "port": port.first}
        if port.last is not None and port.last != port.first:
            item["endPort"] = port.last
        out.append(item)
    if ports and not out:
        warnings.add(where, "a rule with only ICMP ports is left out")
        return None
    return out


def _peers(
    selectors: tuple[ContainerSelector, ...], where: str, warnings: Warnings
) -> list[Document]:
    out: list[Document] = []
    for selector in selectors:
        labels = match_labels(selector)
        if labels is None:
            warnings.add(
                where,
                f"peer {selector.describe()} is not a valid Kubernetes label selector: "
                "it is left out",
            )
            continue
        out.append({"podSelector": {"matchLabels": labels}})
    return out


def match_labels(selector: ContainerSelector) -> dict[str, str] | None:
    """The pod labels a selector means, or None when Kubernetes would refuse them."""
    if selector.compose is not None:
        labels = {PART_OF_LABEL: selector.compose.project}
        if selector.compose.service is not None:
            labels[NAME_LABEL] = selector.compose.service
    elif selector.label is not None:
        labels = {selector.label[0]: selector.label[1]}
    elif selector.stack is not None:
        labels = {PART_OF_LABEL: selector.stack}
    else:
        labels = {NAME_LABEL: str(selector.service or selector.name)}
    if all(valid_label_key(k) and valid_label_value(v) for k, v in labels.items()):
        return labels
    return None


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_NAME.fullmatch(value) is not None


def valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or _DNS_SUBDOMAIN.fullmatch(prefix) is None):
        return False
    return bool(name) and valid_label_value(name)


def _distinct_names(documents: list[Document]) -> None:
    """Two selectors may slug to one name (`name: shop-worker` and compose shop/worker);
    the later one gets a suffix from its entry, so `kubectl apply` keeps both."""
    seen: set[str] = set()
    for document in documents:
        metadata = document["metadata"]
        if metadata["name"] in seen:
            metadata["name"] = slug(
                metadata["name"] + " " + metadata["annotations"]["dockwall/entry"], 60
            )
        seen.add(metadata["name"])


def _policy(title: str, where: str, spec: Document) -> Document:
    annotations = {"dockwall/entry": where}
    if any("ipBlock" in peer for rule in spec.get("ingress", []) for peer in rule.get("from", [])):
        annotations["dockwall/note"] = SOURCE_NOTE
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": PREFIX + slug(title, 60), "annotations": annotations},
        "spec": spec,
    }


EVERY = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def ip_blocks(networks: tuple[Network, ...] | None, carved: tuple[Peer, ...]) -> list[Document]:
    """dockwall's `except` is ipBlock.except, one to one: each block lists the carve-outs
    inside it (Kubernetes refuses others; those outside cannot take anything away), and
    a block carved out whole is left out. `[any]` with except is a block per family."""
    excepts = [n for n in carved if not isinstance(n, ListRef)]
    blocks: list[Document] = []
    for block in networks if networks is not None else EVERY:
        inside = [
            n
            for n in excepts
            if n.version == block.version and n.subnet_of(block)  # type: ignore[arg-type]
        ]
        if any(n == block for n in inside):
            continue
        found: Document = {"cidr": str(block)}
        if inside:
            found["except"] = [str(n) for n in inside]
        blocks.append({"ipBlock": found})
    return blocks
