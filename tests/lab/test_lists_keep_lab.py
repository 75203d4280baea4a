"""nftables keeps a named list's set across a rule-only apply, and a plan in sync trusts
the record of the last apply instead of reading the set (`--verify-lists` reads it).

The proof is an element nobody but this test put there: added by hand to the live list
set, it survives an apply that rebuilds every rule only if that apply never recreated
the set; the plain plan does not see it (no element was read), the deep one does."""

from __future__ import annotations

import re

import pytest

from dockwall.lab.lab import Lab

from .dockwall_cli import Dockwall

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

ENTRIES = 20_000
MARKER = "192.0.2.250"
POLICY = """\
version: 1
lists:
  big: {file: big.txt}
containers:
  - name: web
    ingress:
      - {from: [any], except: [list:big], port: 8080/tcp}
"""
MORE_RULES = POLICY + "      - {from: [203.0.113.0/24], port: 8081/tcp}\n"


def has_marker(lab: Lab) -> bool:
    argv = ["nft", "get", "element", "inet", "dockwall", "list-big-v4", "{", MARKER, "}"]
    return lab.host.run(argv, check=False).returncode == 0


@pytest.mark.parametrize("dockwall", ["nftables"], indirect=True)
def test_a_rule_only_apply_keeps_the_list_set_untouched(lab: Lab, dockwall: Dockwall) -> None:
    lines = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, ENTRIES + 1)]
    (dockwall.workdir / "big.txt").write_text("\n".join(lines) + "\n")
    dockwall.apply(POLICY)
    lab.host.run(["nft", "add", "element", "inet", "dockwall", "list-big-v4", "{", MARKER, "}"])

    assert dockwall.plan_exit(POLICY) == 0, "in sync: the set's elements were not read"
    path = str(dockwall.policy(POLICY))
    deep = dockwall.run("plan", "--verify-lists", "-f", path, check=False).stdout
    assert re.search(r"list big: \+0 -1 \(in place", deep), deep

    plan = dockwall.run("plan", "-f", str(dockwall.policy(MORE_RULES))).stdout
    assert "list big" not in plan, plan
    dockwall.apply(MORE_RULES)
    table = lab.host.run(["nft", "-t", "list", "table", "inet", "dockwall"]).stdout
    assert "proto-dst 8081" in table, table
    assert has_marker(lab), "the list set was recreated by a rule-only apply"
    assert dockwall.plan_exit(MORE_RULES) == 0
