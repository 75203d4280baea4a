"""The nft script the backend loads: what it writes, and what it refuses to write."""

from __future__ import annotations

import pytest

from dockwall.backends.nftables import NftablesBackend
from dockwall.backends.nftables.render import render
from dockwall.backends.nftables.script import NotScriptable, command_text, script
from dockwall.backends.nftables.view import table_view
from tests.unit.test_nft_live import without_table
from tests.unit.test_nft_render import RULESET


def chain(name: str) -> dict[str, object]:
    return {"add": {"chain": {"family": "inet", "table": "dockwall", "name": name}}}


def ifnames(*elements: object) -> dict[str, object]:
    body = {"family": "inet", "table": "dockwall", "name": "bridges", "type": "ifname"}
    return {"add": {"set": {**body, "elem": list(elements)}}}


def test_names_are_bare_and_interface_names_quoted() -> None:
    assert command_text(chain("in-web")) == "add chain inet dockwall in-web"
    assert command_text(ifnames("docker0", "br-0123456789ab")) == (
        'add set inet dockwall bridges { type ifname; elements = { "docker0", "br-0123456789ab" }; }'
    )


@pytest.mark.parametrize("name", ["counter", "1st", "in web", "in-web;", 'in-"web"'])
def test_names_nft_could_read_as_something_else_are_refused(name: str) -> None:
    with pytest.raises(NotScriptable):
        command_text(chain(name))


@pytest.mark.parametrize("interface", ['br"0', "br\\0", "br\n0", 7])
def test_interface_names_that_cannot_be_quoted_are_refused(interface: object) -> None:
    with pytest.raises(NotScriptable):
        command_text(ifnames(interface))


SCRIPT = """\
add table inet dockwall
delete table inet dockwall
add table inet dockwall
add chain inet dockwall owned-by-dockwall
add chain inet dockwall default-in
add chain inet dockwall in-db
add chain inet dockwall ingress
add chain inet dockwall default-out
add chain inet dockwall out-web
add chain inet dockwall egress
add chain inet dockwall forward { type filter hook forward priority -1; policy accept; }
add chain inet dockwall input { type filter hook input priority -1; policy accept; }
add set inet dockwall bridges { type ifname; elements = { "br-0123456789ab", "docker0" }; }
add set inet dockwall intra { type ifname . ifname; elements = { "br-0123456789ab" . "br-0123456789ab", "docker0" . "docker0" }; }
add map inet dockwall ingress-v4 { type ipv4_addr . ifname : verdict; elements = { 172.30.0.2 . "br-0123456789ab" : goto in-db, 172.17.0.2 . "docker0" : return }; }
add map inet dockwall ingress-v6 { type ipv6_addr . ifname : verdict; elements = { 2001:db8:d0c:1::2 . "br-0123456789ab" : goto in-db }; }
add map inet dockwall egress-v4 { type ipv4_addr . ifname : verdict; elements = { 172.30.0.2 . "br-0123456789ab" : return, 172.17.0.2 . "docker0" : goto out-web }; }
add map inet dockwall egress-v6 { type ipv6_addr . ifname : verdict; elements = { 2001:db8:d0c:1::2 . "br-0123456789ab" : return }; }
table inet dockwall {
chain default-in {
counter drop
}
chain in-db {
ip saddr 192.0.2.100 meta l4proto tcp ct original proto-dst 5432 counter return
ip6 saddr 2001:db8:100::/64 meta l4proto tcp ct original proto-dst 5432 counter return
meta l4proto icmp counter return
meta l4proto ipv6-icmp counter return
counter drop
}
chain ingress {
ip daddr . oifname vmap @ingress-v4
ip6 daddr . oifname vmap @ingress-v6
oifname @bridges goto default-in
oifname "br-*" iifname != "br-*" goto default-in
}
chain default-out {
udp dport 53 counter return
counter drop
}
chain out-web {
ip daddr { 198.51.100.7, 203.0.113.0/24 } tcp dport 443 counter return
ip daddr { 198.51.100.7, 203.0.113.0/24 } tcp dport 8000-8100 counter return
udp dport 53 counter return
counter drop
}
chain egress {
ip saddr . iifname vmap @egress-v4
ip6 saddr . iifname vmap @egress-v6
iifname @bridges goto default-out
iifname "br-*" oifname != "br-*" goto default-out
}
chain forward {
ct state established,related accept
iifname . oifname @intra accept
jump ingress
jump egress
}
chain input {
ct state established,related accept
icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept
jump egress
}
}
"""


def test_golden_script_of_a_fresh_host() -> None:
    """Declarations first, one line each, then every chain's rules in one block."""
    [step] = NftablesBackend(without_table()).plan(RULESET).transaction.rules
    assert step.argv == ("nft", "-f", "-")
    assert step.payload == SCRIPT


def test_a_rule_whose_text_is_not_nft_syntax_is_refused() -> None:
    commands = render(RULESET)
    logged = [{"log": {"prefix": "x"}}, {"accept": None}]
    rule = {"family": "inet", "table": "dockwall", "chain": "input", "expr": logged}
    commands.append({"add": {"rule": rule}})
    with pytest.raises(NotScriptable, match="rule"):
        script(commands, table_view(c["add"] for c in commands[3:]))


def test_a_view_of_other_commands_is_refused() -> None:
    commands = render(RULESET)
    with pytest.raises(NotScriptable, match="view"):
        script(commands, table_view(c["add"] for c in commands[3:-1]))
