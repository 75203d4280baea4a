"""Named regressions for plans that never converged (issue 9, section 1), both backends.

Each policy here once left `plan --detailed-exitcode` at 2 right after `apply`: the
backend rendered a rule in a form the kernel prints back otherwise, so every apply
rebuilt the chain (its counters reset) and an agent "repaired drift" every second.
Each test also sends real packets, so convergence never comes at the price of meaning.
"""

from __future__ import annotations

import pytest

from dockwall.lab.probe import Prober

from .dockwall_cli import Dockwall

pytestmark = pytest.mark.lab

ANYONE_EXPLICIT = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress: [{port: 8080/tcp, from: [0.0.0.0/0, "::/0"]}]
"""
ANY_IPV4_ONLY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress: [{port: 8080/tcp, from: [0.0.0.0/0, 192.0.2.0/24, 192.0.2.100]}]
"""
MERGED_LISTS = """\
version: 1
defaults: {ingress: deny, egress: deny}
containers:
  - name: web
    ingress:
      - ports: [8080/tcp, 8080-8085/tcp, 8086/tcp, 8053/udp]
        from: [192.0.2.0/25, 192.0.2.128/25, 192.0.2.100, "2001:db8:100::/48",
               "2001:db8:100::100"]
      - container_ports: [80/tcp, 80/tcp]
        from: [203.0.113.10/32, 203.0.113.10]
    egress:
      - to: [203.0.113.0/24, 203.0.113.10, "::/0"]
        ports: [443/tcp, 440-443/tcp, icmp, icmp]
"""


def test_anyone_written_as_both_zero_prefixes_converges(dockwall: Dockwall, prober: Prober) -> None:
    """The issue's policy: iptables-save prints `-s 0.0.0.0/0` back as nothing."""
    dockwall.apply(ANYONE_EXPLICIT)
    assert dockwall.plan_exit(ANYONE_EXPLICIT) == 0
    firewall = dockwall.firewall()
    assert "0.0.0.0/0" not in firewall and "::/0" not in firewall
    assert prober.probe("198.51.100.7", "host:8080/tcp")
    assert prober.probe("2001:db8:200::7", "host:8080/tcp")
    assert not prober.probe("198.51.100.7", "host:5432/tcp"), "the default still denies"


def test_zero_prefix_of_one_family_is_that_whole_family(dockwall: Dockwall, prober: Prober) -> None:
    dockwall.apply(ANY_IPV4_ONLY)
    assert dockwall.plan_exit(ANY_IPV4_ONLY) == 0
    assert prober.probe("198.51.100.7", "host:8080/tcp")
    assert not prober.probe("2001:db8:100::100", "host:8080/tcp"), "no IPv6 source was named"


def test_duplicate_covered_and_touching_entries_converge(
    dockwall: Dockwall, prober: Prober
) -> None:
    dockwall.apply(MERGED_LISTS)
    assert dockwall.plan_exit(MERGED_LISTS) == 0
    assert prober.probe("192.0.2.7", "host:8080/tcp")
    assert prober.probe("2001:db8:100::100", "host:8080/tcp")
    assert prober.probe("203.0.113.10", "host:8080/tcp"), "container port 80 is allowed"
    assert not prober.probe("198.51.100.7", "host:8080/tcp")
    assert prober.probe("container:web", "203.0.113.20:443/tcp")
    assert not prober.probe("container:web", "203.0.113.20:80/tcp")
