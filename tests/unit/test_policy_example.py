"""The documented example policy, read end to end, and the public API around it."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

import pytest

from dockwall.errors import Location, PolicyError
from dockwall.lab.demo import EXAMPLE as EXAMPLE_POLICY
from dockwall.policy import (
    ComposeMatch,
    ContainerEntry,
    Defaults,
    EgressPolicy,
    EgressRule,
    IngressPolicy,
    IngressRule,
    Policy,
    PortRange,
    load_policy,
    parse_label_rules,
    parse_policy,
    policy_to_yaml,
)

# The example, exactly as written; `make demo` and the README use the same file.
EXAMPLE = EXAMPLE_POLICY.read_text()


@pytest.fixture
def example() -> Policy:
    return parse_policy(EXAMPLE, "policy.yaml")


def test_example_top_level(example: Policy) -> None:
    assert example.version == 1
    assert example.backend == "auto"
    assert example.defaults == Defaults(ingress="deny", egress="allow")
    assert [entry.describe() for entry in example.containers] == [
        "name=web",
        "name=db",
        "compose=shop/worker",
    ]


def test_example_web(example: Policy) -> None:
    web = example.containers[0]
    assert web.name == "web"
    assert web.compose is None
    assert web.label is None
    assert web.ingress is not None
    assert web.ingress.mode == "list"
    (rule,) = web.ingress.rules
    assert rule.host_ports == (PortRange(proto="tcp", first=8080, last=8080),)
    assert rule.container_ports == ()
    assert rule.sources is None
    assert web.egress is not None
    assert web.egress.mode == "list"
    (out,) = web.egress.rules
    assert out.ports == (PortRange(proto="tcp", first=443, last=443),)
    assert out.destinations == (IPv4Network("203.0.113.0/24"),)


def test_example_db(example: Policy) -> None:
    db = example.containers[1]
    assert db.ingress is not None
    (rule,) = db.ingress.rules
    assert rule.host_ports == (PortRange(proto="tcp", first=5432, last=5432),)
    assert rule.sources == (IPv4Network("192.0.2.100/32"), IPv6Network("2001:db8:100::/64"))
    assert db.egress == EgressPolicy(mode="deny")


def test_example_compose(example: Policy) -> None:
    worker = example.containers[2]
    assert worker.compose == ComposeMatch(project="shop", service="worker")
    assert worker.ingress is None
    assert worker.egress == EgressPolicy(mode="deny", rules=())


def test_entries_know_where_they_were_written(example: Policy) -> None:
    assert [entry.index for entry in example.containers] == [0, 1, 2]
    assert [entry.location for entry in example.containers] == [
        Location("policy.yaml", 6, 5),
        Location("policy.yaml", 13, 5),
        Location("policy.yaml", 18, 5),
    ]


def test_location_is_not_part_of_equality(example: Policy) -> None:
    built = Policy(
        version=1,
        defaults=Defaults(ingress="deny"),
        containers=(
            ContainerEntry(
                name="web",
                ingress=IngressPolicy(
                    mode="list",
                    rules=(IngressRule(host_ports=(PortRange(proto="tcp", first=8080),)),),
                ),
                egress=EgressPolicy(
                    mode="list",
                    rules=(
                        EgressRule(
                            ports=("443/tcp",),
                            destinations=(IPv4Network("203.0.113.0/24"),),
                        ),
                    ),
                ),
            ),
            ContainerEntry(
                name="db",
                ingress=IngressPolicy(
                    mode="list",
                    rules=(
                        IngressRule(
                            host_ports=(PortRange(proto="tcp", first=5432),),
                            sources=(
                                IPv4Network("192.0.2.100/32"),
                                IPv6Network("2001:db8:100::/64"),
                            ),
                        ),
                    ),
                ),
                egress=EgressPolicy(mode="deny"),
            ),
            ContainerEntry(
                compose=ComposeMatch(project="shop", service="worker"),
                egress=EgressPolicy(mode="deny"),
            ),
        ),
    )
    assert built == example
    assert built.containers[0].location is None
    assert hash(built.containers[0]) == hash(example.containers[0])


def test_example_round_trips_through_yaml(example: Policy) -> None:
    text = policy_to_yaml(example)
    assert parse_policy(text, "dumped.yaml") == example
    assert "from: [any]" in text
    assert "port: 8080/tcp" in text


def test_parse_accepts_bytes_and_a_bom() -> None:
    assert parse_policy(b"\xef\xbb\xbfversion: 1\n", "p.yaml") == Policy(version=1)
    assert parse_policy(EXAMPLE.encode(), "p.yaml") == parse_policy(EXAMPLE, "p.yaml")


def test_minimal_policy_uses_defaults() -> None:
    policy = parse_policy("version: 1\n", "p.yaml")
    assert policy == Policy(version=1, backend="auto", defaults=Defaults(), containers=())
    assert policy.defaults.ingress == "allow"
    assert policy.defaults.egress == "allow"


def test_yaml_1_1_scalars_keep_their_text() -> None:
    policy = parse_policy(
        """\
version: 1
backend: nftables
containers:
  - name: "no"
    ingress:
      - from: [2001:db8::1, 10.1.2.3]
        container_ports: [80/tcp, icmp]
  - label: on=off
    egress: []
""",
        "p.yaml",
    )
    first, second = policy.containers
    assert first.name == "no"
    assert first.ingress is not None
    (rule,) = first.ingress.rules
    assert rule.sources == (IPv6Network("2001:db8::1/128"), IPv4Network("10.1.2.3/32"))
    assert rule.container_ports == (PortRange(proto="tcp", first=80), PortRange(proto="icmp"))
    assert rule.host_ports == ()
    assert second.label == ("on", "off")
    assert second.describe() == "label=on=off"
    assert second.egress == EgressPolicy(mode="list", rules=())


def test_compose_project_without_service() -> None:
    policy = parse_policy("version: 1\ncontainers:\n  - compose: {project: shop}\n", "p.yaml")
    assert policy.containers[0].describe() == "compose=shop"


def test_load_policy_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(EXAMPLE)
    policy = load_policy(path)
    assert policy == parse_policy(EXAMPLE, "x")
    assert policy.containers[1].location == Location(str(path), 13, 5)


def test_load_policy_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value) == f"{path}: cannot read the policy: No such file or directory"


def test_load_policy_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path)
    assert str(info.value) == f"{tmp_path}: not a regular file (a directory)"


def test_label_rules_flow_form() -> None:
    ingress = parse_label_rules("[{port: 7272/tcp, from: [any]}]", "label", "ingress")
    assert ingress == IngressPolicy(
        mode="list", rules=(IngressRule(host_ports=(PortRange(proto="tcp", first=7272),)),)
    )
    egress = parse_label_rules("[{to: [2001:db8::/32], ports: [53/udp, 53/tcp]}]", "l", "egress")
    assert isinstance(egress, EgressPolicy)
    (rule,) = egress.rules
    assert rule.destinations == (IPv6Network("2001:db8::/32"),)
    assert [str(port) for port in rule.ports] == ["53/udp", "53/tcp"]


@pytest.mark.parametrize("word", ["allow", "deny"])
def test_label_rules_words(word: str) -> None:
    assert parse_label_rules(word, "label", "egress") == EgressPolicy(mode=word)
    assert parse_label_rules(word, "label", "ingress") == IngressPolicy(mode=word)


def test_policy_to_yaml_of_empty_policy() -> None:
    text = policy_to_yaml(Policy(version=1))
    assert text == (
        "version: 1\nbackend: auto\ndefaults:\n  ingress: allow\n  egress: allow\n  peers: allow\n"
        "labels:\n  trust: true\n  containers: false\n"
        "log:\n  group: 2710\n"
        + "".join(
            f"  {d}:\n    rate: 20/second\n    burst: 50\n" for d in ("ingress", "egress", "peers")
        )
        + "containers: []\n"
    )
    assert parse_policy(text, "p") == Policy(version=1)
