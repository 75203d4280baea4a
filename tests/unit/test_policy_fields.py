"""Port specs, CIDRs and the models built directly from Python values."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

import pytest
from pydantic import ValidationError

from dockwall.policy import (
    ComposeMatch,
    ContainerEntry,
    EgressPolicy,
    EgressRule,
    IngressPolicy,
    IngressRule,
    Policy,
    PortRange,
)
from dockwall.policy.fields import (
    SpecError,
    parse_label_selector,
    parse_network,
    parse_port_range,
)


@pytest.mark.parametrize(
    ("text", "parsed", "shown"),
    [
        ("8080/tcp", ("tcp", 8080, 8080), "8080/tcp"),
        ("1000-2000/udp", ("udp", 1000, 2000), "1000-2000/udp"),
        ("53-53/udp", ("udp", 53, 53), "53/udp"),
        ("080/tcp", ("tcp", 80, 80), "80/tcp"),
        ("1-65535/tcp", ("tcp", 1, 65535), "1-65535/tcp"),
        ("icmp", ("icmp", None, None), "icmp"),
    ],
)
def test_port_range_forms(
    text: str, parsed: tuple[str, int | None, int | None], shown: str
) -> None:
    assert parse_port_range(text) == parsed
    assert str(PortRange.model_validate(text)) == shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8080", "port 8080 needs a protocol; did you mean 8080/tcp?"),
        ("1000-2000", "port 1000-2000 needs a protocol; did you mean 1000-2000/tcp?"),
        ("65536/tcp", "port 65536 is out of range 1-65535"),
        ("1-99999/udp", "port 99999 is out of range 1-65535"),
        ("9-8/tcp", "range 9-8 is reversed; did you mean 8-9/tcp?"),
        ("80/sctp", "unknown protocol 'sctp' in '80/sctp': use tcp, udp or icmp"),
        ("80/", "unknown protocol '' in '80/': use tcp, udp or icmp"),
        ("0/icmp", "port 0 is out of range 1-65535"),
        ("8/icmp", "icmp has no ports; write just icmp instead of 8/icmp"),
        ("ICMP", "'ICMP' is not a port: write N/tcp, N-M/udp or icmp"),
        ("tcp/80", "'tcp/80' is not a port: write N/tcp, N-M/udp or icmp"),
        ("-1/tcp", "'-1/tcp' is not a port: write N/tcp, N-M/udp or icmp"),
        ("1" * 40 + "/tcp", "'" + "1" * 40 + "/tcp' is not a port: write N/tcp, N-M/udp or icmp"),
        ("٣/tcp", "'٣/tcp' is not a port: write N/tcp, N-M/udp or icmp"),
    ],
)
def test_port_range_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_port_range(text)
    assert str(info.value) == message


def test_bare_integer_port_suggests_tcp() -> None:
    with pytest.raises(ValidationError, match=r"did you mean 8080/tcp\?"):
        PortRange.model_validate(8080)


def test_port_range_from_fields() -> None:
    assert PortRange(proto="udp", first=53) == PortRange(proto="udp", first=53, last=53)
    assert str(PortRange(proto="icmp")) == "icmp"
    with pytest.raises(ValidationError, match="icmp has no ports"):
        PortRange(proto="icmp", first=1)
    with pytest.raises(ValidationError, match="reversed"):
        PortRange(proto="tcp", first=10, last=5)
    with pytest.raises(ValidationError, match="out of range"):
        PortRange(proto="tcp", first=0)


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("192.0.2.0/24", IPv4Network("192.0.2.0/24")),
        ("192.0.2.7", IPv4Network("192.0.2.7/32")),
        ("0.0.0.0/0", IPv4Network("0.0.0.0/0")),
        ("2001:db8::/32", IPv6Network("2001:db8::/32")),
        ("2001:db8::1", IPv6Network("2001:db8::1/128")),
        ("::/0", IPv6Network("::/0")),
        ("10.0.0.0/255.0.0.0", IPv4Network("10.0.0.0/8")),
    ],
)
def test_networks(text: str, network: IPv4Network | IPv6Network) -> None:
    assert parse_network(text) == network


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "192.0.2.100/24",
            "192.0.2.100/24 has host bits set; did you mean 192.0.2.0/24 or 192.0.2.100/32?",
        ),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or CIDR"),
        ("example.com", "'example.com' is not an IP address or CIDR"),
        ("any ", "'any ' is not an IP address or CIDR"),
        ("fe80::%eth0/64", "'fe80::%eth0/64' has a scope id"),
    ],
)
def test_network_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_network(text)
    assert str(info.value).startswith(message)


def test_label_selector() -> None:
    assert parse_label_selector("tier=db") == ("tier", "db")
    assert parse_label_selector("a=b=c") == ("a", "b=c")
    assert parse_label_selector("com.example.role=") == ("com.example.role", "")
    for bad in ("tier", "=db", "my key=x"):
        with pytest.raises(SpecError):
            parse_label_selector(bad)


def test_rules_from_python_values() -> None:
    rule = IngressRule(sources=("any",))
    assert rule.sources is None
    assert rule.host_ports == ()
    with pytest.raises(ValidationError, match="is empty"):
        IngressRule(sources=())
    out = EgressRule(destinations=("10.0.0.0/8",), ports=(PortRange(proto="icmp"),))
    assert out.destinations == (IPv4Network("10.0.0.0/8"),)


def test_models_are_frozen_and_closed() -> None:
    rule = EgressRule()
    with pytest.raises(ValidationError):
        rule.ports = ()
    with pytest.raises(ValidationError):
        EgressRule(port="80/tcp")


def test_direction_policy_consistency() -> None:
    assert IngressPolicy.model_validate("deny") == IngressPolicy(mode="deny")
    assert EgressPolicy.model_validate([]) == EgressPolicy(mode="list")
    with pytest.raises(ValidationError, match="only used with mode list"):
        EgressPolicy(mode="allow", rules=(EgressRule(),))


def test_entry_needs_exactly_one_matcher() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ContainerEntry()
    with pytest.raises(ValidationError, match="exactly one"):
        ContainerEntry(name="web", label=("a", "b"))
    assert ContainerEntry(label="tier=db").label == ("tier", "db")


def test_describe() -> None:
    assert ContainerEntry(name="web").describe() == "name=web"
    assert ContainerEntry(compose=ComposeMatch(project="shop")).describe() == "compose=shop"
    compose = ComposeMatch(project="shop", service="worker")
    assert ContainerEntry(compose=compose).describe() == "compose=shop/worker"
    assert ContainerEntry(label=("tier", "db")).describe() == "label=tier=db"


def test_policy_from_python_refuses_duplicates() -> None:
    entries = (ContainerEntry(name="web"), ContainerEntry(name="web"))
    with pytest.raises(ValidationError, match=r"already matched by containers\[0\]"):
        Policy(version=1, containers=entries)
    with pytest.raises(ValidationError, match="unsupported version"):
        Policy(version=2)
