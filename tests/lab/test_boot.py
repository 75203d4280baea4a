"""A reboot, simulated: the firewall is wiped and dockerd starts again.

`dockwall apply --boot` runs before dockerd (as dockwall-boot.service does) and restores
the last applied rules without Docker or the policy file. With nftables they hold as
soon as Docker is up: our base chains run before Docker's whatever it inserts. With
iptables, a dockerd that starts without recreating its networks (live-restore) inserts
its FORWARD rules above our jump; the first reconcile (the agent's, after Docker) puts
the jump back on top, and `plan` shows exactly that.
"""

from __future__ import annotations

import pytest

from dockwall.lab import processes
from dockwall.lab.lab import Lab, read_pid
from dockwall.lab.probe import Prober

from .dockwall_cli import Dockwall

pytestmark = pytest.mark.lab

POLICY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: db
    ingress: [{port: 5432/tcp, from: [192.0.2.100, "2001:db8:100::100"]}]
"""
WIPE = (
    ["iptables", "-F"],
    ["iptables", "-X"],
    ["iptables", "-t", "nat", "-F"],
    ["iptables", "-t", "nat", "-X"],
    ["ip6tables", "-F"],
    ["ip6tables", "-X"],
    ["ip6tables", "-t", "nat", "-F"],
    ["ip6tables", "-t", "nat", "-X"],
    ["nft", "flush", "ruleset"],
)


def test_boot_restores_rules_before_docker(lab: Lab, dockwall: Dockwall, prober: Prober) -> None:
    dockwall.apply(POLICY)
    pid = read_pid(lab.names.dockerd_pidfile)
    assert pid is not None
    processes.stop({pid})
    for command in WIPE:
        lab.host.run(command)
    assert "DOCKWALL" not in lab.host.run(["iptables-save"]).stdout
    result = dockwall.run("apply", "--boot")
    assert "Restored" in result.stdout
    lab.start_dockerd()
    if dockwall.backend == "iptables":
        assert dockwall.plan_exit(POLICY) == 2, "Docker pushed our FORWARD jump down"
        dockwall.apply(POLICY)
    assert prober.probe("192.0.2.100", "host:5432/tcp")
    assert not prober.probe("198.51.100.7", "host:5432/tcp")
    assert prober.probe("2001:db8:100::100", "host:5432/tcp")
    assert not prober.probe("2001:db8:200::7", "host:5432/tcp")
    assert not prober.probe("192.0.2.100", "host:8080/tcp"), "defaults deny the rest"
    assert dockwall.plan_exit(POLICY) == 0, "the policy, read again, matches what boot restored"


def test_boot_without_a_previous_apply_is_a_clear_error(dockwall: Dockwall) -> None:
    result = dockwall.run("apply", "--boot", check=False)
    assert result.returncode == 1
    assert "nothing applied yet" in result.stderr
