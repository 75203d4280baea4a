"""The compiler: which entry governs which container, and what the IR says."""

from __future__ import annotations

import ipaddress

from dockwall.compile.compiler import compile_policy
from dockwall.compile.ir import Allow, Filter, PortMatch
from dockwall.model.state import HostState
from dockwall.policy import parse_policy

from .state_samples import DB, EXAMPLE, STATE, WEB, WORKER


def test_example_compiles_to_one_guard_per_matched_container() -> None:
    compiled = compile_policy(parse_policy(EXAMPLE, "p.yaml"), STATE)
    guards = {g.name: g for g in compiled.ruleset.guards}
    assert set(guards) == {"web", "db", "worker"}
    assert guards["web"].ingress == Filter(
        (Allow(None, (PortMatch("tcp", 8080, 8080),), original=True),)
    )
    assert guards["web"].egress == Filter(
        (Allow((ipaddress.ip_network("203.0.113.0/24"),), (PortMatch("tcp", 443, 443),)),)
    )
    assert guards["db"].egress == Filter(())
    assert guards["worker"].ingress == Filter(()), "no ingress given: the default (deny) applies"
    assert guards["worker"].origin == "compose=shop/worker"
    assert compiled.ruleset.default_ingress == Filter(())
    assert compiled.ruleset.default_egress is None
    assert compiled.warnings == ()


def test_endpoints_cover_both_families() -> None:
    compiled = compile_policy(parse_policy(EXAMPLE, "p.yaml"), STATE)
    web = next(g for g in compiled.ruleset.guards if g.name == "web")
    assert {e.address.version for e in web.endpoints} == {4, 6}
    assert {e.interface for e in web.endpoints} == {"docker0"}


def test_container_port_and_host_port_rules() -> None:
    policy = parse_policy(
        "version: 1\ncontainers:\n  - name: web\n    ingress:\n"
        "      - {port: 8080/tcp, container_port: 80/tcp, from: [192.0.2.0/24]}\n",
        "p.yaml",
    )
    (guard,) = compile_policy(policy, STATE).ruleset.guards
    assert guard.ingress is not None
    assert [a.original for a in guard.ingress.allows] == [True, False]


def test_entry_matching_nothing_is_a_warning() -> None:
    policy = parse_policy("version: 1\ncontainers:\n  - name: ghost\n    egress: deny\n", "p.yaml")
    compiled = compile_policy(policy, STATE)
    assert compiled.ruleset.guards == ()
    assert len(compiled.warnings) == 1 and "ghost" in compiled.warnings[0]
    assert "p.yaml:3:" in compiled.warnings[0]


def test_two_entries_matching_one_container_hold_it_closed_and_name_both() -> None:
    policy = parse_policy(
        "version: 1\ncontainers:\n  - name: worker\n    egress: deny\n"
        "  - label: com.docker.compose.project=shop\n    egress: allow\n"
        "  - name: web\n    egress: deny\n",
        "p.yaml",
    )
    compiled = compile_policy(policy, STATE)
    (message,) = compiled.held
    assert "p.yaml:3:" in message and "p.yaml:5:" in message and "'worker'" in message
    assert message in compiled.warnings
    guards = {g.name: g for g in compiled.ruleset.guards}
    assert guards["worker"].ingress == Filter() and guards["worker"].egress == Filter()
    assert guards["web"].egress == Filter() and guards["web"].ingress is None, "others as usual"


def test_image_labels_never_match_label_entries() -> None:
    text = "version: 1\ncontainers:\n  - label: role=x\n    ingress: allow\n"
    from_image = WEB.__class__(
        id=WEB.id, name="web", labels={"role": "x"}, image_labels={"role": "x"}
    )
    own = WEB.__class__(id=WEB.id, name="web", labels={"role": "x"}, image_labels={"role": "y"})
    policy = parse_policy(text, "p.yaml")
    assert compile_policy(policy, HostState((), (from_image,))).ruleset.guards == ()
    assert [g.name for g in compile_policy(policy, HostState((), (own,))).ruleset.guards] == ["web"]


def test_compose_project_without_service_matches_all_services() -> None:
    policy = parse_policy("version: 1\ncontainers:\n  - compose: {project: shop}\n", "p.yaml")
    names = {g.name for g in compile_policy(policy, STATE).ruleset.guards}
    assert names == {"db", "worker"}


def test_allow_defaults_give_no_default_filters() -> None:
    compiled = compile_policy(
        parse_policy("version: 1\n", "p.yaml"), HostState((), (WEB, DB, WORKER))
    )
    assert compiled.ruleset.default_ingress is None and compiled.ruleset.default_egress is None


def test_containers_sharing_a_short_id_get_distinct_keys() -> None:
    web = WEB.__class__(id="ab" * 6 + "0" * 52, name="web", attachments=WEB.attachments)
    twin = WEB.__class__(id="ab" * 6 + "f" * 52, name="web2", attachments=WEB.attachments)
    policy = parse_policy(
        "version: 1\ncontainers:\n  - name: web\n    egress: deny\n  - name: web2\n    egress: deny\n",
        "p.yaml",
    )
    keys = [g.key for g in compile_policy(policy, HostState((), (web, twin))).ruleset.guards]
    assert len(set(keys)) == 2 and all(len(k) == 16 for k in keys)
