"""Every kind of bad input gives one PolicyError: file:line:column: field: message."""

from __future__ import annotations

import pytest

from dockwall.errors import Location, PolicyError
from dockwall.policy import parse_policy

HEAD = "version: 1\ncontainers:\n  - name: web\n"


def error_of(data: str | bytes) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(data, "policy.yaml")
    return info.value


CASES: list[tuple[str, str, str]] = [
    (
        "port out of range",
        HEAD + "    ingress:\n      - port: 70000/tcp\n",
        "policy.yaml:5:15: containers[0].ingress[0].port: port 70000 is out of range 1-65535",
    ),
    (
        "port zero",
        HEAD + "    ingress:\n      - port: 0/udp\n",
        "policy.yaml:5:15: containers[0].ingress[0].port: port 0 is out of range 1-65535",
    ),
    (
        "bare port",
        HEAD + "    ingress:\n      - port: 8080\n",
        "policy.yaml:5:15: containers[0].ingress[0].port: "
        "port 8080 needs a protocol; did you mean 8080/tcp?",
    ),
    (
        "quoted bare port",
        HEAD + '    ingress:\n      - container_ports: [80/tcp, "8080"]\n',
        "policy.yaml:5:35: containers[0].ingress[0].container_ports[1]: "
        "port 8080 needs a protocol; did you mean 8080/tcp?",
    ),
    (
        "docker -p syntax, a sexagesimal int in YAML 1.1",
        HEAD + "    ingress:\n      - port: 8080:80\n",
        "policy.yaml:5:15: containers[0].ingress[0].port: "
        "'8080:80' is not a port: write N/tcp, N-M/udp or icmp",
    ),
    (
        "reversed range",
        HEAD + "    egress:\n      - ports: [80/tcp, 2000-1000/udp]\n",
        "policy.yaml:5:25: containers[0].egress[0].ports[1]: "
        "range 2000-1000 is reversed; did you mean 1000-2000/udp?",
    ),
    (
        "unknown protocol",
        HEAD + "    egress:\n      - port: 53/dns\n",
        "policy.yaml:5:15: containers[0].egress[0].port: "
        "unknown protocol 'dns' in '53/dns': use tcp, udp or icmp",
    ),
    (
        "protocol in capitals",
        HEAD + "    egress:\n      - port: 53/UDP\n",
        "policy.yaml:5:15: containers[0].egress[0].port: "
        "unknown protocol 'UDP' in '53/UDP': use tcp, udp or icmp; did you mean 'udp'?",
    ),
    (
        "icmp with a port",
        HEAD + "    egress:\n      - port: 8/icmp\n",
        "policy.yaml:5:15: containers[0].egress[0].port: "
        "icmp has no ports; write just icmp instead of 8/icmp",
    ),
    (
        "port that is a mapping",
        HEAD + "    egress:\n      - port: {tcp: 80}\n",
        "policy.yaml:5:15: containers[0].egress[0].port: "
        "expected a port like 8080/tcp, 1000-2000/udp or icmp, got a mapping",
    ),
    (
        "host bits set",
        HEAD + "    ingress:\n      - from: [10.0.0.0/8, 2001:db8::1, 192.0.2.100/24]\n",
        "policy.yaml:5:41: containers[0].ingress[0].from[2]: 192.0.2.100/24 has host bits set; "
        "did you mean 192.0.2.0/24 or 192.0.2.100/32?",
    ),
    (
        "ipv6 host bits set",
        HEAD + "    egress:\n      - to: ['2001:db8::1/64']\n",
        "policy.yaml:5:14: containers[0].egress[0].to[0]: 2001:db8::1/64 has host bits set; "
        "did you mean 2001:db8::/64 or 2001:db8::1/128?",
    ),
    (
        "bad cidr",
        HEAD + "    egress:\n      - to: [10.0.0.300/8]\n",
        "policy.yaml:5:14: containers[0].egress[0].to[0]: '10.0.0.300/8' is not an IP address "
        "or CIDR (like 192.0.2.0/24 or 2001:db8::/32)",
    ),
    (
        "any mixed with cidrs",
        HEAD + "    ingress:\n      - from: [10.0.0.0/8, any]\n",
        "policy.yaml:5:28: containers[0].ingress[0].from[1]: "
        "any already covers every address: remove it or the other entries",
    ),
    (
        "empty source list",
        HEAD + "    ingress:\n      - from: []\n",
        "policy.yaml:5:15: containers[0].ingress[0].from: "
        "is empty: list CIDRs, or write [any] for every address",
    ),
    (
        "sources not a list",
        HEAD + "    ingress:\n      - from: any\n",
        "policy.yaml:5:15: containers[0].ingress[0].from: "
        "expected a list of CIDRs or [any], got 'any'; write [any]",
    ),
    (
        "scope id",
        HEAD + "    ingress:\n      - from: ['fe80::1%eth0']\n",
        "policy.yaml:5:16: containers[0].ingress[0].from[0]: "
        "'fe80::1%eth0' has a scope id: write the address without %...",
    ),
    (
        "port and ports",
        HEAD + "    ingress:\n      - port: 80/tcp\n        ports: [81/tcp]\n",
        "policy.yaml:6:9: containers[0].ingress[0].ports: give either port or ports, not both",
    ),
    (
        "container_port and container_ports",
        HEAD + "    ingress:\n      - {container_ports: [1/tcp], container_port: 2/tcp}\n",
        "policy.yaml:5:36: containers[0].ingress[0].container_port: "
        "give either container_ports or container_port, not both",
    ),
    (
        "empty ports",
        HEAD + "    ingress:\n      - ports: []\n",
        "policy.yaml:5:16: containers[0].ingress[0].ports: "
        "is empty: leave it out to mean every port",
    ),
    (
        "ports not a list",
        HEAD + "    egress:\n      - ports: 80/tcp\n",
        "policy.yaml:5:16: containers[0].egress[0].ports: expected a list, got '80/tcp'",
    ),
    (
        "unknown key in a rule",
        HEAD + "    ingress:\n      - prot: 80/tcp\n",
        "policy.yaml:5:9: containers[0].ingress[0].prot: unknown key 'prot'; did you mean "
        "'port'? (allowed keys: port, ports, container_port, container_ports, from, from_containers, "
        "except)",
    ),
    (
        "unknown top-level key",
        "version: 1\ndefault:\n  ingress: deny\n",
        "policy.yaml:2:1: default: unknown key 'default'; did you mean 'defaults'? "
        "(allowed keys: version, backend, defaults, labels, dns, lists, log, containers)",
    ),
    (
        "unknown key without a near miss",
        HEAD + "    zzz: 1\n",
        "policy.yaml:4:5: containers[0].zzz: unknown key 'zzz' "
        "(allowed keys: name, compose, label, service, stack, ingress, egress, restrict_dns, deny_with)",
    ),
    (
        "internal field is not a YAML key",
        HEAD + "    location: here\n",
        "policy.yaml:4:5: containers[0].location: unknown key 'location' "
        "(allowed keys: name, compose, label, service, stack, ingress, egress, restrict_dns, deny_with)",
    ),
    (
        "duplicate key",
        HEAD + "    name: db\n",
        "policy.yaml:4:5: containers[0].name: "
        "duplicate key 'name' (first given at line 3, column 5)",
    ),
    (
        "duplicate top-level key",
        "version: 1\nbackend: auto\nversion: 1\n",
        "policy.yaml:3:1: version: duplicate key 'version' (first given at line 1, column 1)",
    ),
    (
        "duplicate key in a flow mapping",
        "version: 1\ncontainers:\n  - compose: {project: a, project: b}\n",
        "policy.yaml:3:27: containers[0].compose.project: "
        "duplicate key 'project' (first given at line 3, column 15)",
    ),
    (
        "duplicate entry",
        "version: 1\ncontainers:\n  - name: web\n  - name: db\n  - name: web\n",
        "policy.yaml:5:5: containers[2]: name=web is already matched by containers[0] "
        "(at line 3, column 5)",
    ),
    (
        "duplicate compose entry",
        "version: 1\ncontainers:\n  - compose: {project: shop}\n"
        "  - label: a=b\n  - compose:\n      project: shop\n",
        "policy.yaml:5:5: containers[2]: compose=shop is already matched by containers[0] "
        "(at line 3, column 5)",
    ),
    (
        "entry without a matcher",
        "version: 1\ncontainers:\n  - ingress: deny\n",
        "policy.yaml:3:5: containers[0]: "
        "needs one of name, compose, label, service or stack to say which containers it is for",
    ),
    (
        "entry with two matchers",
        HEAD + "    label: a=b\n",
        "policy.yaml:4:5: containers[0].label: "
        "give only one of name, compose, label, service or stack (this entry has name and label)",
    ),
    (
        "missing version",
        "containers: []\n",
        "policy.yaml:1:1: version: is missing: start the policy with version: 1",
    ),
    (
        "unsupported version",
        "version: 2\n",
        "policy.yaml:1:10: version: unsupported version 2: this dockwall reads version 1",
    ),
    (
        "version that is a list",
        "version: [1]\n",
        "policy.yaml:1:10: version: unsupported version a list: this dockwall reads version 1",
    ),
    (
        "bad backend",
        "version: 1\nbackend: iptable\n",
        "policy.yaml:2:10: backend: "
        "must be auto, iptables or nftables, not 'iptable'; did you mean 'iptables'?",
    ),
    (
        "YAML 1.1 boolean word is just a wrong word",
        "version: 1\ndefaults:\n  ingress: no\n",
        "policy.yaml:3:12: defaults.ingress: must be allow or deny, not 'no'",
    ),
    (
        "defaults not a mapping",
        "version: 1\ndefaults: deny\n",
        "policy.yaml:2:11: defaults: expected a mapping, got 'deny'",
    ),
    (
        "bad direction word",
        HEAD + "    ingress: alow\n",
        "policy.yaml:4:14: containers[0].ingress: "
        "expected allow, deny or a list of rules, got 'alow'; did you mean 'allow'?",
    ),
    (
        "mode list is not a word",
        HEAD + "    ingress: list\n",
        "policy.yaml:4:14: containers[0].ingress: "
        "expected allow, deny or a list of rules, got 'list'",
    ),
    (
        "rule that is not a mapping",
        HEAD + "    ingress: [80/tcp]\n",
        "policy.yaml:4:15: containers[0].ingress[0]: expected a mapping, got '80/tcp'",
    ),
    (
        "key without a value",
        HEAD + "    ingress:\n",
        "policy.yaml:4:13: containers[0].ingress: has no value: give one, or leave the key out",
    ),
    (
        "containers not a list",
        "version: 1\ncontainers: web\n",
        "policy.yaml:2:13: containers: expected a list, got 'web'",
    ),
    (
        "compose not a mapping",
        "version: 1\ncontainers:\n  - compose: shop\n",
        "policy.yaml:3:14: containers[0].compose: expected a mapping, got 'shop'",
    ),
    (
        "compose without project",
        "version: 1\ncontainers:\n  - compose: {service: worker}\n",
        "policy.yaml:3:14: containers[0].compose.project: is required",
    ),
    (
        "bad compose service",
        "version: 1\ncontainers:\n  - compose: {project: shop, service: a b}\n",
        "policy.yaml:3:39: containers[0].compose.service: 'a b' is not a valid compose service: "
        "use letters, digits, '_', '.' and '-', starting with a letter or digit",
    ),
    (
        "name that is a list",
        "version: 1\ncontainers:\n  - name: [a]\n",
        "policy.yaml:3:11: containers[0].name: expected a container name, got a list",
    ),
    (
        "name with a space",
        "version: 1\ncontainers:\n  - name: 'web server'\n",
        "policy.yaml:3:11: containers[0].name: 'web server' is not a valid container name: "
        "use letters, digits, '_', '.' and '-', starting with a letter or digit",
    ),
    (
        "label without =",
        "version: 1\ncontainers:\n  - label: tier\n",
        "policy.yaml:3:12: containers[0].label: "
        "'tier' is not a label selector: write key=value, like tier=db",
    ),
    (
        "label as a list",
        "version: 1\ncontainers:\n  - label: [tier, db]\n",
        "policy.yaml:3:12: containers[0].label: expected key=value, got a list",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_error_message(text: str, expected: str) -> None:
    assert str(error_of(text)) == expected


def test_error_carries_its_parts() -> None:
    error = error_of(HEAD + "    ingress:\n      - port: 70000/tcp\n")
    assert error.location == Location("policy.yaml", 5, 15)
    assert error.field == "containers[0].ingress[0].port"
    assert error.message == "port 70000 is out of range 1-65535"


def test_errors_are_reported_in_document_order() -> None:
    error = error_of(
        "version: 1\ncontainers:\n"
        "  - name: web\n    egress:\n      - port: 1/xyz\n"
        "  - name: db\n    ingress:\n      - port: 99999/tcp\n"
    )
    assert error.location == Location("policy.yaml", 5, 15)
