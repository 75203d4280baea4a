"""--cut-existing decides per flow with the same IR that was applied."""

from __future__ import annotations

from dockwall.compile.compiler import compile_policy
from dockwall.conntrack import delete_argv, parse_flows, refused
from dockwall.policy import parse_policy

from .state_samples import STATE

LISTING = """\
ipv4     2 tcp      6 431990 ESTABLISHED src=198.51.100.7 dst=198.51.100.2 sport=40000 dport=5432 src=172.30.0.2 dst=198.51.100.7 sport=5432 dport=40000 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 431990 ESTABLISHED src=192.0.2.100 dst=198.51.100.2 sport=40001 dport=5432 src=172.30.0.2 dst=192.0.2.100 sport=5432 dport=40001 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 431990 ESTABLISHED src=172.17.0.2 dst=203.0.113.10 sport=50000 dport=443 src=203.0.113.10 dst=198.51.100.2 sport=443 dport=50000 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 431990 ESTABLISHED src=172.17.0.2 dst=203.0.113.10 sport=50001 dport=80 src=203.0.113.10 dst=198.51.100.2 sport=80 dport=50001 [ASSURED] mark=0 use=1
ipv6     10 udp      17 20 src=2001:db8:200::7 dst=2001:db8:ffff::2 sport=5000 dport=8080 src=2001:db8:d0c::242:ac11:2 dst=2001:db8:200::7 sport=80 dport=5000 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown.
"""
POLICY = """\
version: 1
containers:
  - name: db
    ingress: [{port: 5432/tcp, from: [192.0.2.100]}]
  - name: web
    ingress: [{port: 8080/tcp}]
    egress: [{to: [203.0.113.0/24], port: 443/tcp}]
"""


def test_parse_and_judge_each_flow() -> None:
    flows = parse_flows(LISTING)
    assert len(flows) == 5
    ruleset = compile_policy(parse_policy(POLICY, "p.yaml"), STATE).ruleset
    assert [refused(f, ruleset) for f in flows] == [True, False, False, True, True]


def test_delete_uses_the_original_tuple() -> None:
    flow = parse_flows(LISTING)[0]
    assert delete_argv(flow) == [
        "conntrack",
        "-D",
        "-f",
        "ipv4",
        "-p",
        "tcp",
        "-s",
        "198.51.100.7",
        "-d",
        "198.51.100.2",
        "--sport",
        "40000",
        "--dport",
        "5432",
    ]
