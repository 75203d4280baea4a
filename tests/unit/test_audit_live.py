"""Live audit checks on saved host state (no root, no Docker)."""

from __future__ import annotations

from dataclasses import replace

from dockwall.audit.live import audit_host, conntrack_full, conntrack_timeout
from dockwall.explain.iptables.parse import parse_iptables_save
from dockwall.explain.live_ruleset import LiveRuleset
from tests.unit.test_explain_simulate import lab_state


def codes(state_findings: list) -> set[str]:  # type: ignore[type-arg]
    return {f.code for f in state_findings}


def test_plain_docker_host_has_open_ports_and_unfiltered_ipv6() -> None:
    findings = audit_host(lab_state())
    assert codes(findings) == {"published-to-all", "ipv6-published-unfiltered"}
    assert any(f.where == "db" and "5432" in f.evidence for f in findings)


def test_input_rule_docker_user_drop_and_ufw() -> None:
    rules = "\n".join(
        [
            ":ufw-user-input - [0:0]",
            "-I DOCKER-USER -d 0.0.0.0/0 -j DROP",
            "-A INPUT -p tcp -m tcp --dport 8080 -j DROP",
        ]
    )
    found = codes(audit_host(lab_state(rules)))
    assert {
        "input-rule-on-published-port",
        "docker-user-drop-without-established",
        "ufw-with-docker",
    } <= found
    assert "published-to-all" not in found


def test_established_exemption_silences_docker_user_finding() -> None:
    rules = (
        "-I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n"
        "-I DOCKER-USER -j DROP"
    )
    assert "docker-user-drop-without-established" not in codes(audit_host(lab_state(rules)))


def test_legacy_rules_next_to_nft_docker() -> None:
    state = lab_state()
    legacy = parse_iptables_save(
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
        4,
        "iptables-legacy",
    )
    state.ruleset = LiveRuleset(state.ruleset.tables + legacy)
    state.rule_sources = {"iptables-nft": 60, "iptables-legacy": 1}
    assert "iptables-variant-mismatch" in codes(audit_host(state))


def test_docker_without_iptables_and_full_conntrack() -> None:
    state = lab_state()
    state.ruleset = LiveRuleset([])
    state.conntrack = (260000, 262144)
    found = codes(audit_host(replace(state)))
    assert {"docker-iptables-disabled", "conntrack-near-full"} <= found


def test_conntrack_timeout_shorter_than_idle_keepalive() -> None:
    (finding,) = conntrack_timeout(600)
    assert finding.code == "conntrack-timeout-short"
    assert "600 s" in finding.message and "7200 s" in finding.message
    assert "nf_conntrack_tcp_timeout_established=21600" in finding.fix
    assert conntrack_timeout(432000) == []
    assert conntrack_timeout(None) == []
    assert "conntrack-timeout-short" in codes(audit_host(lab_state(), 300))
    assert "conntrack-timeout-short" not in codes(audit_host(lab_state(), 432000))


def test_conntrack_count_against_max_says_how_full() -> None:
    state = lab_state()
    state.conntrack = (230000, 262144)
    (finding,) = conntrack_full(state)
    assert "87% full" in finding.message
    assert finding.evidence == "nf_conntrack_count=230000 nf_conntrack_max=262144"
    state.conntrack = (1000, 262144)
    assert conntrack_full(state) == []
