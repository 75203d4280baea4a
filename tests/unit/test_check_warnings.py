"""The warnings of `dockwall check`: one case per warning, at the place the user wrote it,
and the near misses that must stay quiet (a warning that cries wolf gets ignored)."""

from __future__ import annotations

import pytest

from dockwall.commands.check import check_data

HEAD = "version: 1\ncontainers:\n"


def warnings_of(text: str) -> list[str]:
    report = check_data(text.encode(), "p.yaml")
    assert report.error is None, report.error
    return [str(w) for w in report.warnings]


WARNED: dict[str, tuple[str, str]] = {
    "one-letter name": (
        HEAD + "  - name: w\n    egress: deny\n",
        "p.yaml:3:11: containers[0].name: Docker container names have at least two "
        "characters: 'w' matches no container",
    ),
    "compose project Compose never writes": (
        HEAD + "  - compose: {project: My.Shop}\n    egress: deny\n",
        "p.yaml:3:24: containers[0].compose.project: Compose names projects with lowercase "
        "letters, digits, '-' and '_' only: 'My.Shop' matches no container; did you mean "
        "'myshop'?",
    ),
    "selector in from_containers that matches nothing": (
        "version: 1\ndefaults: {peers: deny}\ncontainers:\n"
        "  - name: db\n    ingress:\n      - from_containers: [a]\n",
        "p.yaml:6:27: containers[0].ingress[0].from_containers[0].name: Docker container "
        "names have at least two characters",
    ),
    "entry with no direction": (
        HEAD + "  - name: web\n",
        "p.yaml:3:5: containers[0]: has neither ingress nor egress",
    ),
    "empty rule list": (
        HEAD + "  - name: web\n    egress: []\n",
        "p.yaml:4:13: containers[0].egress: an empty list allows nothing: write deny if that "
        "is what you mean",
    ),
    "rule list that allows nothing": (
        HEAD + "  - name: web\n    ingress:\n      - from_containers: [db]\n",
        "p.yaml:5:7: containers[0].ingress: no rule in this list allows anything, so it "
        "denies all traffic",
    ),
    "from_containers without peers: deny": (
        HEAD + "  - name: web\n    ingress:\n      - from_containers: [db]\n",
        "p.yaml:5:26: containers[0].ingress[0].from_containers: from_containers only takes "
        "effect with defaults.peers: deny (containers on a shared network reach each other "
        "already); this rule allows nothing",
    ),
    "shadowed by a rule for every port": (
        HEAD + "  - name: web\n    ingress:\n      - from: [192.0.2.0/24]\n"
        "      - port: 8080/tcp\n        from: [192.0.2.7]\n",
        "p.yaml:6:9: containers[0].ingress[1]: adds nothing: rule [0] of this list already "
        "allows all of it (at line 5, column 9)",
    ),
    "shadowed: range covers port, any covers CIDR": (
        HEAD + "  - name: web\n    egress:\n      - {ports: [1-1024/tcp, 53/udp]}\n"
        "      - {to: [203.0.113.0/24], port: 443/tcp}\n",
        "p.yaml:6:9: containers[0].egress[1]: adds nothing: rule [0]",
    ),
    "shadowed: both /0 are any": (
        HEAD + '  - name: web\n    ingress:\n      - {port: 80/tcp, from: [0.0.0.0/0, "::/0"]}\n'
        "      - {port: 80/tcp}\n",
        "p.yaml:6:9: containers[0].ingress[1]: adds nothing: rule [0]",
    ),
    "shadowed peers rule": (
        "version: 1\ndefaults: {peers: deny}\ncontainers:\n  - name: db\n    ingress:\n"
        "      - {from_containers: [web, api], port: 5432/tcp}\n"
        "      - {from_containers: [{name: web}], port: 5432/tcp}\n",
        "p.yaml:7:9: containers[0].ingress[1]: adds nothing: rule [0]",
    ),
    "/0 mixed with CIDRs of its family": (
        HEAD + "  - name: web\n    ingress:\n      - from: [0.0.0.0/0, 192.0.2.0/24]\n",
        "p.yaml:5:27: containers[0].ingress[0].from[1]: 192.0.2.0/24 is already covered by "
        "0.0.0.0/0 in this list (at line 5, column 16)",
    ),
    "address inside an earlier one": (
        HEAD + '  - name: web\n    egress:\n      - to: ["2001:db8::/32", "2001:db8:1::5"]\n',
        "p.yaml:5:31: containers[0].egress[0].to[1]: 2001:db8:1::5/128 is already covered by "
        "2001:db8::/32 in this list",
    ),
    "address inside a later one": (
        HEAD + "  - name: web\n    egress:\n      - to: [192.0.2.5, 192.0.2.0/24]\n",
        "p.yaml:5:14: containers[0].egress[0].to[0]: 192.0.2.5/32 is already covered by "
        "192.0.2.0/24 in this list (at line 5, column 25)",
    ),
    "duplicate address": (
        HEAD + "  - name: web\n    egress:\n      - to: [192.0.2.5, 192.0.2.5/32]\n",
        "p.yaml:5:25: containers[0].egress[0].to[1]: 192.0.2.5/32 is already covered by "
        "192.0.2.5/32 in this list (at line 5, column 14)",
    ),
    "port inside a range": (
        HEAD + "  - name: web\n    ingress:\n      - container_ports: [80/tcp, 1-1024/tcp]\n",
        "p.yaml:5:27: containers[0].ingress[0].container_ports[0]: 80/tcp is already covered "
        "by 1-1024/tcp in this list",
    ),
    "egress to the container's loopback": (
        HEAD + '  - name: web\n    egress:\n      - to: [203.0.113.0/24, "::1"]\n',
        "p.yaml:5:30: containers[0].egress[0].to[1]: ::1/128 is the container's own loopback",
    ),
    "label caps while labels are not trusted": (
        "version: 1\nlabels:\n  trust: false\n  egress_to: [203.0.113.0/24]\n",
        "p.yaml:4:14: labels.egress_to: has no effect: labels.trust is false",
    ),
    "address covered in a label cap": (
        "version: 1\nlabels:\n  ingress_from: [192.0.2.0/24, 192.0.2.128/25]\n",
        "p.yaml:3:32: labels.ingress_from[1]: 192.0.2.128/25 is already covered by 192.0.2.0/24",
    ),
}


@pytest.mark.parametrize("case", sorted(WARNED))
def test_each_warning(case: str) -> None:
    text, expected = WARNED[case]
    found = warnings_of(text)
    assert any(w.startswith(expected) for w in found), found


@pytest.mark.parametrize("case", sorted(WARNED))
def test_the_policy_still_loads(case: str) -> None:
    """Warnings never make a file invalid: plan and apply would take it as it is."""
    assert check_data(WARNED[case][0].encode(), "p.yaml").valid


QUIET: dict[str, str] = {
    "different ports": (
        "  - name: web\n    ingress:\n      - {port: 80/tcp, from: [192.0.2.0/24]}\n"
        "      - {port: 443/tcp, from: [192.0.2.0/24]}\n"
    ),
    "a wider rule after a narrower one": (
        "  - name: web\n    ingress:\n      - {port: 80/tcp, from: [192.0.2.7]}\n"
        "      - {port: 80/tcp, from: [192.0.2.0/24]}\n"
    ),
    "host port and container port are matched apart": (
        "  - name: web\n    ingress:\n      - {port: 8080/tcp}\n      - {container_port: 80/tcp}\n"
    ),
    "tcp does not cover udp": (
        "  - name: web\n    egress:\n      - {port: 53/tcp}\n      - {port: 53/udp}\n"
    ),
    "IPv4 /0 is not IPv6": (
        "  - name: web\n    ingress:\n      - {port: 80/tcp, from: [0.0.0.0/0]}\n"
        '      - {port: 80/tcp, from: ["2001:db8::/32"]}\n'
    ),
    "one family each": ('  - name: web\n    egress:\n      - to: [0.0.0.0/0, "::/0"]\n'),
    "adjacent, not overlapping": (
        "  - name: web\n    egress:\n      - to: [192.0.2.0/25, 192.0.2.128/25]\n"
        "        ports: [1-100/tcp, 101-200/tcp]\n"
    ),
    "explicit deny": "  - name: web\n    ingress: deny\n    egress: allow\n",
    "compose names as Compose writes them": (
        "  - compose: {project: my_shop-2, service: Web.1}\n    egress: deny\n"
    ),
}


@pytest.mark.parametrize("case", sorted(QUIET))
def test_no_false_alarm(case: str) -> None:
    assert warnings_of(HEAD + QUIET[case]) == []


def test_peers_rules_are_quiet_when_peers_are_isolated() -> None:
    text = (
        "version: 1\ndefaults: {peers: deny}\ncontainers:\n  - name: db\n    ingress:\n"
        "      - {from_containers: [web], port: 5432/tcp}\n"
        "      - {from_containers: [api], port: 5432/tcp}\n"
        "      - {from_containers: [web], port: 5433/tcp}\n"
    )
    assert warnings_of(text) == []


def test_warnings_come_in_file_order() -> None:
    text = HEAD + "  - name: w\n  - name: web\n    egress: []\n"
    lines = [int(w.split(":")[1]) for w in warnings_of(text)]
    assert lines == sorted(lines) and len(lines) == 3
