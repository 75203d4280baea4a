"""to_fqdn through the compiler and both renderers, and the carry-over of learned elements."""

from __future__ import annotations

import ipaddress

from dockwall.backends.iptables import fqdn as ipt_fqdn
from dockwall.backends.iptables.render import render as ipt_render
from dockwall.backends.nftables import fqdn as nft_fqdn
from dockwall.backends.nftables.backend import added_objects, load
from dockwall.backends.nftables.render import render as nft_render
from dockwall.backends.nftables.view import table_view
from dockwall.compile.compiler import compile_policy
from dockwall.compile.ir import Ruleset
from dockwall.export.k8s import export_k8s
from dockwall.export.view import build_view
from dockwall.model.state import Attachment, Bridge, Container, HostState
from dockwall.policy import parse_policy

POLICY = """\
version: 1
labels: {egress_fqdn: ["**.example.com"]}
containers:
  - name: worker
    egress:
      - to_fqdn: [api.example.test]
        to: [192.0.2.0/24]
        port: 443/tcp
  - name: open
    egress: allow
"""
V4, V6 = "172.17.0.2", "2001:db8:d0c::2"


def container(name: str, v4: str, v6: str, labels: dict[str, str] | None = None) -> Container:
    addresses = (ipaddress.ip_address(v4), ipaddress.ip_address(v6))
    return Container(
        name * 8,
        name,
        labels=labels or {},
        attachments=(Attachment("bridge", "docker0", addresses),),
    )


def ruleset(policy: str = POLICY, *extra: Container) -> Ruleset:
    state = HostState(
        (Bridge("bridge", "docker0"),),
        (container("worker", V4, V6), container("open", "172.17.0.3", "2001:db8:d0c::3"), *extra),
        None,
    )
    return compile_policy(parse_policy(policy, "p.yaml"), state).ruleset


def test_clients_are_the_name_governed_containers() -> None:
    dns = ruleset().dns
    assert dns is not None
    assert {str(c.address) for c in dns.clients} == {V4, V6}
    assert dns.patterns == ("api.example.test",)
    assert ruleset("version: 1\n").dns is None


def test_labels_keep_only_names_under_the_cap() -> None:
    label = "[{to_fqdn: [a.example.com, evil.test], port: 443/tcp}]"
    labelled = container("lab", "172.17.0.4", "2001:db8:d0c::4", {"dockwall.egress": label})
    dns = ruleset(POLICY, labelled).dns
    assert dns is not None
    assert dns.patterns == ("a.example.com", "api.example.test")


def test_nft_sets_redirect_and_dot_drop() -> None:
    commands = nft_render(ruleset())
    view = table_view(added_objects(commands))
    name = nft_fqdn.set_name("api.example.test", 4)
    assert view.sets[name].declaration == "type ipv4_addr; flags timeout"
    assert view.chains["dns-nat"].hook == "type nat hook prerouting priority -101; policy accept"
    nat = view.chains["dns-nat"].rules
    assert any("th dport 53" in r and "redirect to :53535" in r for r in nat), nat
    forward = view.chains["forward"].rules
    assert any("th dport 853" in r and r.endswith("drop") for r in forward), forward
    worker = view.chains["out-worker"].rules
    assert f"ip daddr @{name} tcp dport 443 counter return" in worker
    assert "ip daddr 192.0.2.0/24 tcp dport 443 counter return" in worker


def test_learned_elements_ride_along_and_never_show_in_plans() -> None:
    name = nft_fqdn.set_name("api.example.test", 4)
    listed = [
        {"set": {"name": name, "type": "ipv4_addr", "flags": ["timeout"], "elem": [
            {"elem": {"val": "192.0.2.100", "timeout": 60, "expires": 42}},
        ]}}
    ]  # fmt: skip
    carried = nft_fqdn.carried_elements(listed)
    assert carried == {name: [{"elem": {"val": "192.0.2.100", "timeout": 42}}]}
    commands = nft_render(ruleset(), carried)
    desired = table_view(added_objects(commands))
    assert desired.sets[name].elements == frozenset()
    step = load(commands, desired)
    assert f"add set inet dockwall {name} {{ type ipv4_addr; flags timeout; elements = " in (
        step.payload
    )
    assert "192.0.2.100 timeout 42s" in step.payload


def test_iptables_matches_learned_ipsets_and_redirects() -> None:
    rules = ruleset()
    chains = ipt_render(rules, "ipv4").chains
    name = ipt_fqdn.set_name("api.example.test", "ipv4")
    egress = next(c for n, c in chains.items() if n.startswith("DOCKWALL-E-"))
    assert f"-p tcp -m set --match-set {name} dst -m tcp --dport 443 -j RETURN" in egress
    assert f"-s {V4}/32 -p tcp -m tcp --dport 853 -j DROP" in chains["DOCKWALL-FORWARD"]
    assert (
        "-p udp -m udp --dport 53535 -m conntrack --ctstate DNAT -j RETURN"
        in chains["DOCKWALL-INPUT"]
    )
    nat = ipt_fqdn.nat_rules(rules, "ipv6")
    assert f"-s {V6}/128 -p udp -m udp --dport 53 -j REDIRECT --to-ports 53535" in nat


def test_k8s_export_writes_names_as_cilium_to_fqdns() -> None:
    policy = parse_policy(
        "version: 1\ncontainers:\n  - name: w\n    restrict_dns: true\n    egress:\n"
        "      - to_fqdn: [api.example.com, '*.example.org']\n        port: 443/tcp\n",
        "p.yaml",
    )
    exported = export_k8s(build_view(policy), "p.yaml")
    assert "kind: CiliumNetworkPolicy" in exported.text
    assert "- matchName: api.example.com" in exported.text
    assert "- matchPattern: '*.example.org'" in exported.text
    assert "matchPattern: '*'" not in exported.text  # restrict_dns: only its own names
    assert not exported.warnings
