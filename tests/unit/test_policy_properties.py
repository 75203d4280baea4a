"""Property tests: dump/parse round trips, and no input escapes as anything but PolicyError."""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dockwall.errors import PolicyError
from dockwall.policy import (
    ComposeMatch,
    ContainerEntry,
    Defaults,
    EgressPolicy,
    EgressRule,
    IngressPolicy,
    IngressRule,
    Network,
    Policy,
    PortRange,
    parse_label_rules,
    parse_policy,
    policy_to_yaml,
)
from dockwall.policy.fields import MAPPED, parse_network

QUICK = settings(max_examples=200, deadline=None)

ports = st.integers(1, 65535)


@st.composite
def port_ranges(draw: st.DrawFn) -> PortRange:
    proto = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    if proto == "icmp":
        return PortRange(proto="icmp")
    first, last = sorted((draw(ports), draw(ports)))
    return PortRange(proto=proto, first=first, last=last)


@st.composite
def networks(draw: st.DrawFn) -> Network:
    if draw(st.booleans()):
        address: Any = draw(st.ip_addresses(v=4))
        prefix = draw(st.integers(0, 32))
    else:
        address = draw(st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None))
        prefix = draw(st.integers(0, 128))
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    assume(not (network.version == 6 and network.subnet_of(MAPPED)))  # refused: see fields
    return network


addresses = st.none() | st.lists(networks(), min_size=1, max_size=3).map(tuple)
port_lists = st.lists(port_ranges(), max_size=3).map(tuple)
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,15}", fullmatch=True)
label_keys = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,15}", fullmatch=True)

ingress_rules = st.builds(
    IngressRule, host_ports=port_lists, container_ports=port_lists, sources=addresses
)
egress_rules = st.builds(EgressRule, ports=port_lists, destinations=addresses)
ingress_policies = st.sampled_from(["allow", "deny"]).map(lambda mode: IngressPolicy(mode=mode)) | (
    st.lists(ingress_rules, max_size=3).map(lambda rules: IngressPolicy(mode="list", rules=rules))
)
egress_policies = st.sampled_from(["allow", "deny"]).map(lambda mode: EgressPolicy(mode=mode)) | (
    st.lists(egress_rules, max_size=3).map(lambda rules: EgressPolicy(mode="list", rules=rules))
)
matchers = st.one_of(
    st.builds(dict, name=names),
    st.builds(dict, compose=st.builds(ComposeMatch, project=names, service=st.none() | names)),
    st.builds(dict, label=st.tuples(label_keys, st.text(max_size=20))),
)


@st.composite
def entries(draw: st.DrawFn) -> ContainerEntry:
    return ContainerEntry(
        **draw(matchers),
        ingress=draw(st.none() | ingress_policies),
        egress=draw(st.none() | egress_policies),
    )


verdicts = st.sampled_from(["allow", "deny"])
policies = st.builds(
    Policy,
    version=st.just(1),
    backend=st.sampled_from(["auto", "iptables", "nftables"]),
    defaults=st.builds(Defaults, ingress=verdicts, egress=verdicts),
    containers=st.lists(entries(), max_size=5, unique_by=ContainerEntry.describe).map(tuple),
)


@QUICK
@given(policies)
def test_policy_round_trips_through_yaml(policy: Policy) -> None:
    assert parse_policy(policy_to_yaml(policy), "dumped.yaml") == policy


@QUICK
@given(st.one_of(ingress_policies, egress_policies))
def test_label_rules_round_trip_in_flow_form(rules: IngressPolicy | EgressPolicy) -> None:
    direction = "ingress" if isinstance(rules, IngressPolicy) else "egress"
    entry = ContainerEntry(name="x", **{direction: rules})
    data = yaml.safe_load(policy_to_yaml(Policy(version=1, containers=(entry,))))
    flow = yaml.safe_dump(data["containers"][0][direction], default_flow_style=True)
    assert parse_label_rules(flow, "label", direction) == rules


@QUICK
@given(port_ranges())
def test_port_range_string_round_trip(port: PortRange) -> None:
    assert PortRange.model_validate(str(port)) == port


@QUICK
@given(networks())
def test_network_string_round_trip(network: Network) -> None:
    assert parse_network(str(network)) == network
    if network.prefixlen == network.max_prefixlen:
        assert parse_network(str(network.network_address)) == network


def _parses_or_policy_error(data: str | bytes) -> None:
    try:
        parse_policy(data, "fuzz.yaml")
    except PolicyError as error:
        assert str(error).startswith("fuzz.yaml:")
        assert error.location.line is not None
        assert error.location.column is not None


@QUICK
@given(st.text())
def test_arbitrary_text_gives_only_policy_errors(text: str) -> None:
    _parses_or_policy_error(text)


@QUICK
@given(st.binary())
def test_arbitrary_bytes_give_only_policy_errors(data: bytes) -> None:
    _parses_or_policy_error(data)


WORDS = [
    "version", "backend", "defaults", "containers", "name", "compose", "project", "service",
    "label", "ingress", "egress", "port", "ports", "container_port", "container_ports", "from",
    "to", "any", "allow", "deny", "list", "icmp", "1", "2", "80/tcp", "8080", "1-2/udp",
    "9-1/tcp", "70000/tcp", "10.0.0.0/8", "10.0.0.1/8", "2001:db8::1", "web", "a=b", "",
]  # fmt: skip

scalars = st.sampled_from(WORDS) | st.text(max_size=8)
trees = st.recursive(
    st.none() | scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(WORDS), children, max_size=4)
    ),
    max_leaves=25,
)


@QUICK
@given(st.dictionaries(st.sampled_from(WORDS), trees, max_size=5), st.booleans())
def test_policy_shaped_yaml_gives_only_policy_errors(data: dict[str, Any], flow: bool) -> None:
    _parses_or_policy_error(yaml.safe_dump(data, default_flow_style=flow))


@QUICK
@given(policies, st.data())
def test_corrupted_policies_give_only_policy_errors(policy: Policy, data: st.DataObject) -> None:
    text = policy_to_yaml(policy)
    index = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.sampled_from([":", "-", " ", "\n", "[", "]", "0", "x", "", "&a"]))
    _parses_or_policy_error(text[:index] + replacement + text[index + 1 :])


@QUICK
@given(trees | st.text(), st.sampled_from(["ingress", "egress"]))
def test_label_values_give_only_policy_errors(value: Any, direction: str) -> None:
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True)
    try:
        parse_label_rules(text, "label", direction)
    except PolicyError as error:
        assert str(error).startswith("label")
