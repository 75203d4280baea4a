"""`dockwall export k8s`: golden output, schema validation, and no silent drops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings

from dockwall.export.k8s import export_k8s, match_labels
from dockwall.export.view import build_view
from dockwall.policy import ComposeMatch, ContainerSelector, Policy

from .export_helpers import SOURCE, example_policy, example_state, view_of
from .test_policy_properties import policies

GOLDEN = Path(__file__).parent / "data" / "export"
VERSIONS = ("1.29.0", "1.37.0")


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def validate_all(text: str) -> int:
    docs = documents(text)
    for doc in docs:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    return len(docs)


@pytest.mark.parametrize("live", [False, True], ids=["file", "live"])
def test_example_matches_golden_file_and_validates(live: bool) -> None:
    result = export_k8s(build_view(example_policy(), example_state() if live else None), SOURCE)
    golden = GOLDEN / f"example-k8s{'-live' if live else ''}.yaml"
    assert result.text == golden.read_text()
    assert validate_all(result.text) == 4


def test_the_validator_refuses_a_wrong_document() -> None:
    doc = documents(export_k8s(build_view(example_policy()), SOURCE).text)[0]
    doc["spec"]["ingress"][0]["sources"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[0], strict=True)


def test_live_maps_host_port_to_container_port() -> None:
    result = export_k8s(build_view(example_policy(), example_state()), SOURCE)
    web = documents(result.text)[0]
    assert web["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 80}]
    assert not [w for w in result.warnings if "container port" in w.message]


def test_file_only_export_warns_that_host_port_stands_for_container_port() -> None:
    result = export_k8s(build_view(example_policy()), SOURCE)
    assert sum("taken as the container port" in w.message for w in result.warnings) == 2


def test_icmp_only_rule_is_left_out_not_widened() -> None:
    result = export_k8s(
        view_of(
            "version: 1\ncontainers:\n  - name: a\n    ingress:\n      - port: icmp\n"
            "        from: [192.0.2.0/24]\n    egress:\n      - to: [any]\n        port: icmp\n"
        ),
        SOURCE,
    )
    (doc,) = documents(result.text)
    assert doc["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert all("ports" in rule or "to" in rule for rule in doc["spec"]["egress"])
    assert {} not in doc["spec"]["egress"]
    assert sum("ICMP" in w.message for w in result.warnings) >= 2


def test_peers_deny_and_default_deny_both_directions() -> None:
    result = export_k8s(
        view_of(
            "version: 1\ndefaults: {ingress: deny, egress: deny, peers: deny}\ncontainers:\n"
            "  - name: api\n    ingress:\n      - from_containers: [web, {label: tier=edge}]\n"
            "        container_port: 8000-8010/tcp\n"
        ),
        SOURCE,
    )
    api, defaults = documents(result.text)
    assert api["spec"]["ingress"] == [
        {
            "from": [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}},
                {"podSelector": {"matchLabels": {"tier": "edge"}}},
            ],
            "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8010}],
        }
    ]
    assert defaults["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert defaults["spec"]["ingress"] == []
    assert [r["ports"][0]["port"] for r in defaults["spec"]["egress"]] == [53]
    assert validate_all(result.text) == 2
    assert result.warnings == ()


def test_selectors_map_to_recommended_labels() -> None:
    assert match_labels(ContainerSelector(name="web")) == {"app.kubernetes.io/name": "web"}
    assert match_labels(ContainerSelector(compose=ComposeMatch(project="shop"))) == {
        "app.kubernetes.io/part-of": "shop"
    }
    assert match_labels(ContainerSelector(label=("bad key", "x"))) is None
    assert match_labels(ContainerSelector(name="trailing-")) is None


def test_names_stay_distinct_when_selectors_slug_alike() -> None:
    result = export_k8s(
        view_of(
            "version: 1\ncontainers:\n  - name: shop-worker\n    egress: deny\n"
            "  - compose: {project: shop, service: worker}\n    egress: deny\n"
        ),
        SOURCE,
    )
    names = [d["metadata"]["name"] for d in documents(result.text)]
    assert len(set(names)) == 2


def dropped_parts(policy: Policy) -> list[str]:
    """What NetworkPolicy cannot say in a policy: ICMP ports and unmappable selectors."""
    parts = []
    for entry in policy.containers:
        explicit = [d for d in (entry.ingress, entry.egress) if d is not None]
        if explicit and match_labels(entry) is None:
            parts.append("selector")
        for direction in explicit:
            for rule in direction.rules:
                ports = getattr(rule, "container_ports", ()) or getattr(rule, "host_ports", ())
                ports = ports or getattr(rule, "ports", ())
                if any(p.proto == "icmp" for p in ports) and match_labels(entry) is not None:
                    parts.append("ICMP")
    return parts


@settings(max_examples=60, deadline=None)
@given(policies)
def test_every_policy_exports_valid_documents_and_warns_for_each_dropped_part(
    policy: Policy,
) -> None:
    result = export_k8s(build_view(policy), SOURCE)
    docs = documents(result.text)
    for doc in docs:
        kubernetes_validate.validate(doc, VERSIONS[1], strict=True)
    text = " ".join(w.message for w in result.warnings)
    for part in dropped_parts(policy):
        assert ("ICMP" in text) if part == "ICMP" else ("not a valid Kubernetes" in text)
    exported = {d["metadata"]["annotations"]["dockwall/entry"] for d in docs}
    for entry in policy.containers:
        if entry.ingress is not None or entry.egress is not None:
            where = entry.describe()
            assert where in exported or any(w.where == where for w in result.warnings)
    for doc in docs:
        for rule in doc["spec"].get("ingress", []) + doc["spec"].get("egress", []):
            assert rule.get("from", rule.get("to")) != []


def test_rule_without_ports_warns_or_takes_the_published_ports_live() -> None:
    text = "version: 1\ncontainers:\n  - name: web\n    ingress: [{from: [192.0.2.0/24]}]\n"
    plain = export_k8s(view_of(text), SOURCE)
    assert "ports" not in documents(plain.text)[0]["spec"]["ingress"][0]
    assert any("every port of the pod" in w.message for w in plain.warnings)
    live = export_k8s(view_of(text, example_state()), SOURCE)
    assert documents(live.text)[0]["spec"]["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 80}
    ]
    assert live.warnings == ()
