"""Tightening leaves live connections alone, unless --cut-existing asks to end them."""

from __future__ import annotations

import pytest

from dockwall.lab import topology as t
from dockwall.lab.lab import Lab

from .dockwall_cli import Dockwall, Held

pytestmark = pytest.mark.lab

OPEN = "version: 1\ncontainers:\n  - name: web\n    ingress: [{port: 8080/tcp, from: [any]}]\n"
TIGHT = (
    "version: 1\ncontainers:\n  - name: web\n    ingress:\n"
    '      - {port: 8080/tcp, from: [192.0.2.100, "2001:db8:100::100"]}\n'
)


@pytest.mark.parametrize(
    ("allowed", "refused", "host"),
    [
        ("192.0.2.100", "198.51.100.7", t.HOST_UPLINK_V4),
        ("2001:db8:100::100", "2001:db8:200::7", t.HOST_UPLINK_V6),
    ],
    ids=["ipv4", "ipv6"],
)
def test_cut_existing_ends_exactly_the_refused_flows(
    lab: Lab, dockwall: Dockwall, allowed: str, refused: str, host: str
) -> None:
    dockwall.apply(OPEN)
    with Held(lab, allowed, host, 8080) as keep, Held(lab, refused, host, 8080) as cut:
        dockwall.apply(TIGHT)
        assert keep.echo("a") and cut.echo("a"), "without --cut-existing both flows live on"
        result = dockwall.apply(TIGHT, "--cut-existing")
        assert f"{refused} " in result.stdout, "the cut flow is reported"
        assert f"{allowed} " not in result.stdout, "only refused flows are cut"
        assert keep.echo("b"), "the allowed flow is untouched"
        assert not cut.echo("b"), "the refused flow is gone from conntrack and now dropped"
