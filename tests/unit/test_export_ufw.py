"""`dockwall export ufw`: the route rules and the after.rules hook (ufw itself runs in
the lab test, tests/lab/test_export_lab.py, never on this machine's firewall)."""

from __future__ import annotations

import shlex

from dockwall.export.ufw import MARK_BEGIN, MARK_END, after_rules, export_ufw, route_commands
from dockwall.export.view import Warnings, build_view

from .export_helpers import SOURCE, example_policy, example_state, view_of


def commands(text: str) -> list[list[str]]:
    return [shlex.split(line) for line in text.splitlines() if line.startswith("ufw route")]


def test_file_only_rules_name_the_port_for_any_container() -> None:
    result = export_ufw(build_view(example_policy()), SOURCE)
    assert commands(result.text) == [
        ["ufw", "route", "allow", "proto", "tcp", "from", "any", "to", "any", "port", "8080",
         "comment", "dockwall name=web"],
        ["ufw", "route", "allow", "proto", "tcp", "from", "192.0.2.100/32", "to", "any", "port",
         "5432", "comment", "dockwall name=db"],
        ["ufw", "route", "allow", "proto", "tcp", "from", "2001:db8:100::/64", "to", "any",
         "port", "5432", "comment", "dockwall name=db"],
    ]  # fmt: skip
    messages = " ".join(w.message for w in result.warnings)
    assert "every container" in messages
    assert "egress is not exported" in messages
    assert "IPv4 only" in messages


def test_live_rules_name_container_address_and_port_and_warn_they_go_stale() -> None:
    result = export_ufw(build_view(example_policy(), example_state()), SOURCE)
    assert commands(result.text)[:2] == [
        ["ufw", "route", "allow", "proto", "tcp", "from", "any", "to", "172.17.0.2", "port",
         "80", "comment", "dockwall name=web"],
        ["ufw", "route", "allow", "proto", "tcp", "from", "192.0.2.100/32", "to", "172.30.0.2",
         "port", "5432", "comment", "dockwall name=db"],
    ]  # fmt: skip
    assert len(commands(result.text)) == 2
    assert any("go stale" in w.message for w in result.warnings)


def test_defaults_allow_opens_unmatched_containers_only_live() -> None:
    text = "version: 1\ndefaults: {ingress: allow}\ncontainers:\n  - name: db\n    ingress: deny\n"
    live = route_commands(view_of(text, example_state()), Warnings())
    assert live == [
        ["route", "allow", "proto", "tcp", "from", "any", "to", "172.17.0.2", "port", "80",
         "comment", "dockwall defaults"]
    ]  # fmt: skip
    warnings = Warnings()
    assert route_commands(view_of(text), warnings) == []
    assert any("--live" in w.message for w in warnings.items)


def test_icmp_and_ranges() -> None:
    warnings = Warnings()
    found = route_commands(
        view_of(
            "version: 1\ncontainers:\n  - name: a\n    ingress:\n"
            "      - container_ports: [icmp, 7000-7010/udp]\n        from: [192.0.2.0/24]\n"
        ),
        warnings,
    )
    assert found == [
        ["route", "allow", "proto", "udp", "from", "192.0.2.0/24", "to", "any", "port",
         "7000:7010", "comment", "dockwall name=a"]
    ]  # fmt: skip
    assert any("ICMP" in w.message for w in warnings.items)


def test_after_rules_hook_docker_user_into_ufw() -> None:
    text = after_rules()
    lines = text.splitlines()
    assert lines[0] == MARK_BEGIN and lines[-1] == MARK_END
    assert "-A DOCKER-USER -j ufw-user-forward" in lines
    assert lines.index("-A DOCKER-USER -j ufw-user-forward") < lines.index(
        "-A DOCKER-USER -j RETURN"
    )
    assert lines[-2] == "COMMIT"
