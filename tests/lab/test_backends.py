"""Backend choice: auto follows Docker, status says why, and switching cleans up."""

from __future__ import annotations

import json

import pytest

from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober

from .dockwall_cli import Dockwall

pytestmark = pytest.mark.lab

POLICY = (
    "version: 1\ncontainers:\n  - name: db\n"
    '    ingress: [{port: 5432/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]\n'
)


def iptables_rules(lab: Lab) -> str:
    return lab.host.run(["iptables-save"]).stdout + lab.host.run(["ip6tables-save"]).stdout


def nft_tables(lab: Lab) -> str:
    return lab.host.run(["nft", "list", "tables"]).stdout


def test_switching_backends_removes_the_other(lab: Lab, dockwall: Dockwall, prober: Prober) -> None:
    other = "nftables" if dockwall.backend == "iptables" else "iptables"
    first = Dockwall(lab, dockwall.workdir, other)
    first.apply(POLICY)
    dockwall.apply(POLICY)
    has_chains = "DOCKWALL" in iptables_rules(lab)
    has_table = "inet dockwall" in nft_tables(lab)
    assert (has_chains, has_table) == (
        (True, False) if dockwall.backend == "iptables" else (False, True)
    )
    assert prober.probe("192.0.2.100", "host:5432/tcp")
    assert not prober.probe("198.51.100.7", "host:5432/tcp")
    assert not prober.probe("2001:db8:200::7", "host:5432/tcp")


def test_status_json_says_which_backend_and_why(dockwall: Dockwall) -> None:
    dockwall.apply(POLICY)
    report = json.loads(dockwall.run("status", "--json", "-f", str(dockwall.policy(POLICY))).stdout)
    assert report["backend"] == dockwall.backend
    assert report["reason"]
    assert report["in_sync"] is True
    db = next(c for c in report["containers"] if c["name"] == "db")
    assert db["entry"] == "name=db" and "192.0.2.100/32" in db["ingress"]
    assert report["counters"]
    assert all(isinstance(c["packets"], int) for c in report["counters"])


def test_auto_follows_docker_here(lab: Lab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """This lab's Docker 20.10 uses iptables (nft variant): auto must say so."""
    dw = Dockwall(lab, tmp_path, "auto")
    try:
        report = json.loads(dw.run("status", "--json", "-f", str(dw.policy(POLICY))).stdout)
        assert report["backend"] == "iptables"
        assert "iptables-nft" in report["reason"]
    finally:
        dw.cleanup()
