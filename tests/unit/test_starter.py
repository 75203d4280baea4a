"""`dockwall init`'s starter policy: today's behaviour, written through policy_to_yaml."""

from __future__ import annotations

import dataclasses

import pytest

from dockwall.commands.starter import HEADER, starter_policy
from dockwall.errors import DockwallError
from dockwall.model.state import HostState, PublishedPort
from dockwall.policy import parse_policy

from .state_samples import DB, DOCKER0, SHOP, STATE, WEB, WORKER


def test_every_container_keeps_its_ports_open_and_egress_allowed() -> None:
    text = starter_policy(STATE)
    assert text.startswith(HEADER)
    policy = parse_policy(text, "init")
    entries = {entry.describe(): entry for entry in policy.containers}
    assert sorted(entries) == ["compose=shop/db", "compose=shop/worker", "name=web"]
    web = entries["name=web"]
    assert web.ingress is not None and web.ingress.mode == "list"
    assert [(str(r.host_ports[0]), r.sources) for r in web.ingress.rules] == [("8080/tcp", None)]
    assert entries["compose=shop/worker"].ingress is None
    assert all(e.egress is not None and e.egress.mode == "allow" for e in policy.containers)
    assert (policy.defaults.ingress, policy.defaults.egress) == ("allow", "allow")


def test_ports_sorted_and_replicas_of_one_service_share_one_entry() -> None:
    ports = [PublishedPort(8053, 53, "udp"), PublishedPort(8080, 80, "tcp")]
    web = dataclasses.replace(WEB, ports=(ports[1], ports[0], ports[1]))
    replica = dataclasses.replace(DB, name="db-2", id="ff" * 6)
    policy = parse_policy(starter_policy(HostState((DOCKER0, SHOP), (web, DB, replica))), "x")
    assert [e.describe() for e in policy.containers] == ["compose=shop/db", "name=web"]
    rules = policy.containers[1].ingress
    assert rules is not None
    assert [str(r.host_ports[0]) for r in rules.rules] == ["8053/udp", "8080/tcp"]


def test_no_containers_is_a_valid_empty_policy() -> None:
    assert parse_policy(starter_policy(HostState((DOCKER0,), ())), "x").containers == ()


def test_a_name_no_policy_can_spell_is_one_clear_error() -> None:
    bad = dataclasses.replace(WORKER, name="bad name", labels={})
    with pytest.raises(DockwallError, match="container 'bad name'"):
        starter_policy(HostState((SHOP,), (bad,)))
