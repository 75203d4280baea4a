"""`dockwall export aws`: botocore's own validator, the rule limits, Terraform as HCL."""

from __future__ import annotations

import json
import shlex
from typing import Any

import botocore.session
import hcl2
import pytest
from botocore.validate import ParamValidator

from dockwall.errors import DockwallError
from dockwall.export.aws import RULE_LIMIT, export_aws
from dockwall.export.view import build_view

from .export_helpers import EXAMPLE_TEXT, SOURCE, example_policy, example_state, view_of

EC2 = botocore.session.get_session().get_service_model("ec2")
ACTIONS = {"ingress": "AuthorizeSecurityGroupIngress", "egress": "AuthorizeSecurityGroupEgress"}


def validate(direction: str, permissions: list[dict[str, Any]]) -> None:
    """Raises when botocore's client would refuse the parameters (no request is sent)."""
    shape = EC2.operation_model(ACTIONS[direction]).input_shape
    params = {"GroupId": "sg-0123456789abcdef0", "IpPermissions": permissions}
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()


def exported_json(text: str, live: bool = False) -> dict[str, list[dict[str, Any]]]:
    view = view_of(text, example_state() if live else None)
    data: dict[str, list[dict[str, Any]]] = json.loads(export_aws(view, SOURCE, "json").text)
    return data


MIXED = """version: 1
containers:
  - name: web
    ingress:
      - ports: [8080/tcp, 9000-9010/udp, icmp]
        from: [192.0.2.0/24, "2001:db8:100::/64"]
    egress:
      - to: [203.0.113.0/24]
        ports: [443/tcp, icmp]
      - to: ["2001:db8:203::/48"]
  - name: db
    ingress:
      - port: 5432/tcp
        from: [192.0.2.100/32]
    egress: deny
defaults: {ingress: deny, egress: deny}
"""


def test_example_and_mixed_policies_validate_with_botocore() -> None:
    for text in (EXAMPLE_TEXT, MIXED):
        data = exported_json(text)
        for direction, permissions in data.items():
            if permissions:
                validate(direction, permissions)


def test_validator_refuses_a_wrong_shape() -> None:
    shape = EC2.operation_model(ACTIONS["ingress"]).input_shape
    report = ParamValidator().validate(
        {"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": "80"}]}, shape
    )
    assert report.has_errors()


def test_mixed_policy_rules() -> None:
    data = exported_json(MIXED)
    by_proto = {(p["IpProtocol"], p.get("FromPort")): p for p in data["ingress"]}
    assert by_proto[("udp", 9000)]["ToPort"] == 9010
    assert by_proto[("icmp", -1)]["IpRanges"][0]["CidrIp"] == "192.0.2.0/24"
    assert by_proto[("icmpv6", -1)]["Ipv6Ranges"][0]["CidrIpv6"] == "2001:db8:100::/64"
    assert [r["CidrIp"] for r in by_proto[("tcp", 5432)]["IpRanges"]] == ["192.0.2.100/32"]
    egress = {(p["IpProtocol"], p.get("FromPort")) for p in data["egress"]}
    assert egress == {("tcp", 443), ("icmp", -1), ("-1", None)}


def test_example_egress_is_the_union_and_says_so() -> None:
    result = export_aws(build_view(example_policy()), SOURCE, "json")
    (rule,) = json.loads(result.text)["egress"]
    assert rule["IpProtocol"] == "-1"
    assert any("union" in w.message for w in result.warnings)


def test_live_opens_the_published_ports_of_allow_entries() -> None:
    text = "version: 1\ndefaults: {ingress: allow, egress: deny}\n"
    data = exported_json(text, live=True)
    assert sorted(p["FromPort"] for p in data["ingress"]) == [5432, 8080]
    assert data["egress"] == []
    without_live = export_aws(view_of(text), SOURCE, "json")
    assert any("--live" in w.message for w in without_live.warnings)


def many_sources(count: int, family: int) -> str:
    if family == 4:
        sources = [f"192.0.2.{i}/32" for i in range(count)]
    else:
        sources = [f'"2001:db8::{i:x}/128"' for i in range(count)]
    return (
        "version: 1\ndefaults: {ingress: deny, egress: deny}\ncontainers:\n  - name: web\n"
        f"    ingress:\n      - port: 443/tcp\n        from: [{', '.join(sources)}]\n"
    )


def test_sixty_rules_per_family_fit() -> None:
    for family in (4, 6):
        data = exported_json(many_sources(RULE_LIMIT, family))
        validate("ingress", data["ingress"])


def test_sixty_one_rules_fail_with_the_count() -> None:
    with pytest.raises(DockwallError) as error:
        export_aws(view_of(many_sources(75, 6)), SOURCE, "json")
    assert "75 ingress IPv6 rules" in str(error.value)
    assert "60" in str(error.value)


def test_limits_count_each_family_separately() -> None:
    both = many_sources(RULE_LIMIT, 4).replace(
        "]\n", ", " + many_sources(RULE_LIMIT, 6).split("from: [")[1]
    )
    data = exported_json(both)
    assert sum(len(p.get("IpRanges", [])) for p in data["ingress"]) == RULE_LIMIT
    assert sum(len(p.get("Ipv6Ranges", [])) for p in data["ingress"]) == RULE_LIMIT


def test_command_lines_carry_valid_json() -> None:
    text = export_aws(view_of(MIXED), SOURCE, "cli", "sg-0abc").text
    commands = [shlex.split(line) for line in text.splitlines() if line.startswith("aws ")]
    actions = [c[2] for c in commands]
    assert actions == [
        "revoke-security-group-egress",
        "authorize-security-group-ingress",
        "authorize-security-group-egress",
    ]
    for command in commands:
        assert command[3:5] == ["--group-id", "sg-0abc"]
        direction = command[2].rsplit("-", 1)[1]
        validate(direction, json.loads(command[command.index("--ip-permissions") + 1]))


def test_terraform_parses_as_hcl_with_one_resource_per_rule() -> None:
    text = export_aws(view_of(MIXED), SOURCE, "terraform").text
    parsed = hcl2.loads(text)
    resources = [r for block in parsed["resource"] for r in block.items()]
    kinds = [kind.strip('"') for kind, _ in resources]
    assert kinds.count("aws_vpc_security_group_ingress_rule") == 7
    assert kinds.count("aws_vpc_security_group_egress_rule") == 3
    assert "variable" in parsed
