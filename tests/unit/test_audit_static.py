"""Static audit of Dockerfiles and compose files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockwall.audit.static import audit_compose, audit_dockerfile, audit_files
from dockwall.errors import DockwallError

DOCKERFILE = """FROM debian:12
RUN apt-get update && \\
    apt-get install -y iptables && \\
    iptables -A INPUT -p tcp --dport 8080 -j DROP
RUN echo nftables-free line
EXPOSE 8080/tcp
"""
COMPOSE = """
services:
  db:
    image: postgres
    ports: ["5432:5432", "127.0.0.1:6379:6379"]
  web:
    image: nginx
    ports:
      - target: 80
        published: 8080
  cache:
    image: redis
    ports:
      - target: 6379
        published: 6379
        host_ip: 0.0.0.0
  agent:
    image: agent
    network_mode: host
    cap_add: [NET_ADMIN]
  priv:
    image: x
    privileged: true
"""


def codes(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((f.code, f.where) for f in findings)


def test_dockerfile_run_iptables_across_continuations_and_expose() -> None:
    findings = audit_dockerfile("Dockerfile", DOCKERFILE)
    assert codes(findings) == [
        ("dockerfile-run-firewall", "Dockerfile:2"),
        ("expose-is-not-publish", "Dockerfile:6"),
    ]
    assert "iptables -A INPUT" in findings[0].evidence
    assert "version: 1" in findings[0].fix


def test_compose_sensitive_ports_host_network_and_privileges() -> None:
    found = codes(audit_compose("compose.yaml", COMPOSE))
    assert found == [
        ("network-mode-host", "compose.yaml: service agent"),
        ("privileged-network", "compose.yaml: service agent"),
        ("privileged-network", "compose.yaml: service priv"),
        ("sensitive-port-published", "compose.yaml: service cache"),
        ("sensitive-port-published", "compose.yaml: service db"),
    ]


def test_loopback_bound_database_is_fine() -> None:
    text = "services:\n  db:\n    ports: ['127.0.0.1:5432:5432', '[::1]:5433:5432']\n"
    assert audit_compose("c.yml", text) == []


def test_files_are_dispatched_by_name(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "compose.yml").write_text(COMPOSE)
    findings = audit_files([tmp_path / "Dockerfile", tmp_path / "compose.yml"])
    assert {f.code for f in findings} >= {"dockerfile-run-firewall", "network-mode-host"}


def test_not_a_compose_file_is_a_clear_error() -> None:
    with pytest.raises(DockwallError, match="services"):
        audit_compose("x.yaml", "just: text\n")
