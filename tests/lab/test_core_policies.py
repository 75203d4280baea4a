"""The article's examples done right, each proven with real packets in the lab.

Every test runs for IPv4 and IPv6: `fam` picks the addresses of one family.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober

from .dockwall_cli import Dockwall, Held

pytestmark = pytest.mark.lab


@dataclass(frozen=True)
class Fam:
    allowed_src: str
    other_src: str
    inet: str
    inet_other: str
    host: str

    def at(self, address: str, port: int, proto: str = "tcp") -> str:
        host = f"[{address}]" if ":" in address else address
        return f"{host}:{port}/{proto}"


V4 = Fam("192.0.2.100", "198.51.100.7", "203.0.113.10", "198.51.100.7", t.HOST_UPLINK_V4)
V6 = Fam(
    "2001:db8:100::100", "2001:db8:200::7", "2001:db8:203::10", "2001:db8:200::7", t.HOST_UPLINK_V6
)


@pytest.fixture(params=[V4, V6], ids=["ipv4", "ipv6"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return request.param  # type: ignore[no-any-return]


EXAMPLE = """\
version: 1
defaults:
  ingress: deny
  egress: allow
containers:
  - name: web
    ingress:
      - port: 8080/tcp
        from: [any]
    egress:
      - to: [203.0.113.0/24, "2001:db8:203::/48"]
        port: 443/tcp
  - name: db
    ingress:
      - port: 5432/tcp
        from: [192.0.2.100/32, "2001:db8:100::/64"]
    egress: deny
  - compose: {project: shop, service: worker}
    egress: deny
"""


def test_example_policy(dockwall: Dockwall, prober: Prober, fam: Fam) -> None:
    dockwall.apply(EXAMPLE)
    assert prober.probe(fam.other_src, "host:8080/tcp")
    assert prober.probe(fam.allowed_src, "host:5432/tcp")
    assert not prober.probe(fam.other_src, "host:5432/tcp")
    assert not prober.probe(fam.allowed_src, "host:8053/udp"), "not named for web: denied"
    assert prober.probe("container:web", fam.at(fam.inet, 443))
    assert not prober.probe("container:web", fam.at(fam.inet, 80))
    assert not prober.probe("container:worker", fam.at(fam.inet, 443))


def test_a_egress_blocked_but_published_port_and_replies_work(
    dockwall: Dockwall, prober: Prober, fam: Fam
) -> None:
    assert prober.probe("container:web", fam.at(fam.inet, 443))
    dockwall.apply("version: 1\ncontainers:\n  - name: web\n    egress: deny\n")
    assert not prober.probe("container:web", fam.at(fam.inet, 443))
    assert not prober.probe("container:web", fam.at(fam.inet, 53, "udp"))
    assert prober.probe(fam.other_src, "host:8080/tcp"), "ingress and its replies still pass"
    assert prober.probe(fam.other_src, "host:8053/udp")


def test_b_only_one_source_reaches_published_port(
    dockwall: Dockwall, prober: Prober, fam: Fam
) -> None:
    dockwall.apply(
        "version: 1\ncontainers:\n  - name: db\n    ingress:\n"
        '      - {port: 5432/tcp, from: [192.0.2.100, "2001:db8:100::100"]}\n'
    )
    assert prober.probe(fam.allowed_src, "host:5432/tcp")
    assert not prober.probe(fam.other_src, "host:5432/tcp")


def test_b_article_input_rules_leave_the_port_open(
    lab: Lab, dockwall: Dockwall, prober: Prober
) -> None:
    """The article's example 3, verbatim but for the address: INPUT never sees the packets."""
    rules = [
        [
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "5432",
            "-s",
            "192.0.2.100",
            "-j",
            "ACCEPT",
        ],
        ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "5432", "-j", "DROP"],
    ]
    for rule in rules:
        lab.host.run(rule)
    try:
        assert prober.probe("198.51.100.7", "host:5432/tcp"), "INPUT rules did not protect it"
    finally:
        for rule in rules:
            lab.host.run(["iptables", "-D", *rule[2:]])


def test_c_default_deny_ingress_holds_new_containers_too(
    lab: Lab, dockwall: Dockwall, prober: Prober, fam: Fam
) -> None:
    dockwall.apply("version: 1\ndefaults: {ingress: deny}\n")
    assert not prober.probe(fam.allowed_src, "host:8080/tcp")
    assert not prober.probe(fam.allowed_src, "host:5432/tcp")
    lab.run_container("late", {"80/tcp": 9090})
    assert not prober.probe(fam.allowed_src, "host:9090/tcp"), "unknown container: fail closed"
    assert prober.probe("container:late", fam.at(fam.inet, 443)), "egress default is allow"


def test_d_egress_allowlist_by_cidr_and_port(dockwall: Dockwall, prober: Prober, fam: Fam) -> None:
    dockwall.apply(
        "version: 1\ncontainers:\n  - compose: {project: shop, service: worker}\n    egress:\n"
        '      - {to: [203.0.113.0/24, "2001:db8:203::/48"], port: 443/tcp}\n'
        '      - {to: [203.0.113.20/32, "2001:db8:203::20"], port: 53/udp}\n'
    )
    assert prober.probe("container:worker", fam.at(fam.inet, 443))
    assert not prober.probe("container:worker", fam.at(fam.inet, 80))
    assert not prober.probe("container:worker", fam.at(fam.inet_other, 443))
    twenty = "203.0.113.20" if fam is V4 else "2001:db8:203::20"
    assert prober.probe("container:worker", fam.at(twenty, 53, "udp"))
    assert not prober.probe("container:worker", fam.at(fam.inet, 53, "udp"))
    assert prober.probe("container:db", fam.at(fam.inet, 80)), "other containers untouched"


def test_f_container_to_host_egress_blocked(dockwall: Dockwall, prober: Prober, fam: Fam) -> None:
    target = fam.at(fam.host, t.HOST_SERVICE_PORT)
    assert prober.probe("container:worker", target)
    dockwall.apply("version: 1\ncontainers:\n  - name: worker\n    egress: deny\n")
    assert not prober.probe("container:worker", target)
    assert not prober.probe("container:worker", fam.at(fam.host, t.HOST_SERVICE_PORT, "udp"))
    assert prober.probe("container:db", target)


def test_g_reset_restores_docker_behaviour(
    lab: Lab, dockwall: Dockwall, prober: Prober, fam: Fam
) -> None:
    before = dockwall.firewall()
    dockwall.apply(EXAMPLE)
    assert dockwall.firewall() != before
    dockwall.run("reset")
    assert dockwall.firewall() == before
    assert prober.probe(fam.other_src, "host:5432/tcp")
    assert prober.probe("container:worker", fam.at(fam.inet, 443))
    lab.run_container("after", {"80/tcp": 9191})
    assert prober.probe(fam.other_src, "host:9191/tcp")


def test_h_apply_is_idempotent(dockwall: Dockwall) -> None:
    assert dockwall.plan_exit(EXAMPLE) == 2
    dockwall.apply(EXAMPLE)
    assert dockwall.plan_exit(EXAMPLE) == 0
    rules = dockwall.firewall()
    dockwall.apply(EXAMPLE)
    assert dockwall.firewall() == rules, "a second apply changes nothing"


def test_i_established_connection_survives_reapply(
    lab: Lab, dockwall: Dockwall, prober: Prober, fam: Fam
) -> None:
    dockwall.apply(
        "version: 1\ncontainers:\n  - name: web\n    ingress: [{port: 8080/tcp, from: [any]}]\n"
    )
    with Held(lab, fam.other_src, fam.host, 8080) as held:
        tightened = (
            "version: 1\ncontainers:\n  - name: web\n    ingress:\n"
            '      - {port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}\n'
        )
        for round_ in range(3):
            other = tightened.replace("192.0.2.100", "192.0.2.7")
            dockwall.apply(tightened if round_ % 2 == 0 else other)
            assert held.echo(f"ping {round_}"), "the established connection still carries data"
        assert not prober.probe(fam.other_src, "host:8080/tcp"), "new connections are denied"


BAD_POLICIES = {
    "syntax": ("version: 1\ncontainers: [\n", "policy.yaml:"),
    "unknown key": (
        "version: 1\ncontainers:\n  - name: web\n    ingres: deny\n",
        "policy.yaml:4:5",
    ),
    "bad cidr": (
        "version: 1\ncontainers:\n  - name: db\n"
        "    ingress: [{port: 5432/tcp, from: [192.0.2.300/32]}]\n",
        "policy.yaml:4:",
    ),
    "port range": (
        "version: 1\ncontainers:\n  - name: db\n    ingress: [{port: 70000/tcp}]\n",
        "policy.yaml:4:",
    ),
    "empty": ("", "policy.yaml"),
}


@pytest.mark.parametrize("case", sorted(BAD_POLICIES))
def test_j_bad_input_leaves_firewall_unchanged(dockwall: Dockwall, case: str) -> None:
    dockwall.apply(EXAMPLE)
    before = dockwall.firewall()
    text, where = BAD_POLICIES[case]
    result = dockwall.run("apply", "-f", str(dockwall.policy(text)), check=False)
    assert result.returncode == 1
    assert where in result.stderr
    assert "Traceback" not in result.stderr
    assert dockwall.firewall() == before


def test_j_non_utf8_policy(dockwall: Dockwall) -> None:
    path = dockwall.workdir / "latin1.yaml"
    path.write_bytes(b"version: 1\ncontainers:\n  - name: caf\xe9\n")
    before = dockwall.firewall()
    result = dockwall.run("apply", "-f", str(path), check=False)
    assert result.returncode == 1 and "latin1.yaml:3" in result.stderr
    assert dockwall.firewall() == before


def test_two_entries_matching_one_container_hold_it_closed_and_name_both(
    dockwall: Dockwall, prober: Prober
) -> None:
    """Worker, matched twice, is held closed (no new connections in or out); everyone
    else is applied as usual."""
    text = (
        "version: 1\ncontainers:\n  - name: worker\n    egress: deny\n"
        "  - compose: {project: shop, service: worker}\n    egress: allow\n"
        "  - name: web\n    ingress: [{port: 8080/tcp, from: [192.0.2.100]}]\n"
    )
    result = dockwall.run("apply", "-f", str(dockwall.policy(text)), check=False)
    assert result.returncode == 0
    assert "policy.yaml:3:" in result.stderr and "policy.yaml:5:" in result.stderr
    assert "held closed" in result.stderr and "matches no running container" not in result.stderr
    strict = dockwall.run("apply", "--strict", "-f", str(dockwall.policy(text)), check=False)
    assert strict.returncode == 5
    assert not prober.probe("container:worker", "203.0.113.10:80/tcp")
    assert prober.probe("192.0.2.100", "host:8080/tcp")
    assert not prober.probe("198.51.100.7", "host:8080/tcp")
    dockwall.run("reset")
    assert prober.probe("container:worker", "203.0.113.10:80/tcp")


def test_unmatched_name_is_a_warning(dockwall: Dockwall) -> None:
    result = dockwall.apply("version: 1\ncontainers:\n  - name: nosuch\n    egress: deny\n")
    assert "warning" in result.stderr and "nosuch" in result.stderr
