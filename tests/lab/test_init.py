"""`dockwall init` spells out today's behaviour: applying it changes no reachability."""

from __future__ import annotations

import pytest

from dockwall.lab import matrix as m
from dockwall.lab.probe import Prober
from dockwall.policy import parse_policy

from .dockwall_cli import Dockwall

pytestmark = pytest.mark.lab


def test_starter_policy_keeps_everything_reachable(dockwall: Dockwall, prober: Prober) -> None:
    before = m.measure(prober)
    text = dockwall.run("init", "-f", "-").stdout
    policy = parse_policy(text, "init")
    assert {e.describe() for e in policy.containers} == {
        "name=web",
        "name=db",
        "compose=shop/worker",
    }
    web = next(e for e in policy.containers if e.name == "web")
    assert web.ingress is not None and [str(r.host_ports[0]) for r in web.ingress.rules] == [
        "8053/udp",
        "8080/tcp",
    ]
    dockwall.apply(text)
    assert dockwall.plan_exit(text) == 0
    assert m.measure(prober) == before


def test_init_refuses_to_overwrite(dockwall: Dockwall) -> None:
    path = dockwall.policy("version: 1\n")
    result = dockwall.run("init", "-f", str(path), check=False)
    assert result.returncode == 1 and "exists" in result.stderr
    assert path.read_text() == "version: 1\n"
