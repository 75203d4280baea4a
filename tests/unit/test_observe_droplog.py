"""The drop log's pure parts: `log:` in the policy, the rules both backends render before
a drop, the tags that name the policy entry, and what explain makes of log rules."""

from __future__ import annotations

import json

import pytest

from dockwall.backends.iptables.render import render as render_iptables
from dockwall.backends.nftables.backend import added_objects
from dockwall.backends.nftables.render import render as render_nft
from dockwall.backends.nftables.script import script
from dockwall.backends.nftables.view import table_view
from dockwall.compile.compiler import compile_policy, log_limit
from dockwall.compile.ir import DropLog, LogLimit
from dockwall.compile.origin import describe_tag, log_prefix, parse_prefix
from dockwall.errors import PolicyError
from dockwall.explain.iptables.parse import parse_iptables_save
from dockwall.explain.netfilter import Continue, Drop
from dockwall.explain.nft.parse import parse_nft_json
from dockwall.policy import parse_policy
from dockwall.policy.logging import LogRate

from .state_samples import STATE

POLICY = """\
version: 1
defaults: {ingress: deny, egress: deny, peers: deny}
containers:
  - name: web
    ingress:
      - {port: 8080/tcp, from: [192.0.2.0/24]}
    egress:
      - {to: [192.0.2.0/24], port: 80/tcp}
"""


def log_of(text: str) -> DropLog | None:
    return compile_policy(parse_policy(text, "policy.yaml"), STATE).ruleset.log


@pytest.mark.parametrize(
    ("written", "ingress", "egress"),
    [
        ("", LogLimit(20, "second", 50), LogLimit(20, "second", 50)),
        ("log: on\n", LogLimit(20, "second", 50), LogLimit(20, "second", 50)),
        ("log: {rate: 5/s, burst: 3}\n", LogLimit(5, "second", 3), LogLimit(5, "second", 3)),
        ("log: {rate: 120/minute}\n", LogLimit(2, "second", 50), LogLimit(2, "second", 50)),
        ("log: {rate: 5/min, egress: off}\n", LogLimit(5, "minute", 50), None),
        ("log:\n  egress: {rate: 1/hour, burst: 2}\n", LogLimit(20, "second", 50),
         LogLimit(1, "hour", 2)),
    ],
)  # fmt: skip
def test_every_way_to_write_log(written: str, ingress: LogLimit, egress: LogLimit | None) -> None:
    found = log_of("version: 1\n" + written)
    assert found is not None
    assert (found.ingress, found.egress) == (ingress, egress)


@pytest.mark.parametrize("word", ["off", "false", "no", "Off"])
def test_log_off_renders_no_log_rule(word: str) -> None:
    assert log_of(f"version: 1\nlog: {word}\n") is None
    text = POLICY + f"log: {word}\n"
    ruleset = compile_policy(parse_policy(text, "policy.yaml"), STATE).ruleset
    rules = [r for rs in render_iptables(ruleset, "ipv4").chains.values() for r in rs]
    assert not [r for r in rules if "NFLOG" in r]
    assert "log prefix" not in json.dumps(render_nft(ruleset))


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("log: {rate: 0/s}", "policy.yaml:2:13: log.rate: must be between 1/second"),
        ("log: {rate: fast}", "policy.yaml:2:13: log.rate: must be a rate like 20/second"),
        ("log: {burst: -1}", "policy.yaml:2:14: log.burst: must be a whole number"),
        ("log: {rat: 1/s}", "policy.yaml:2:7: log.rat: unknown key 'rat'; did you mean 'rate'?"),
        ("log: {group: 70000}", "policy.yaml:2:14: log.group: must be from 1 to 65535"),
        ("log: {ingress: {burst: x}}", "policy.yaml:2:24: log.ingress.burst: must be a whole"),
        ("log: maybe", "policy.yaml:2:6: log: must be off, on or a mapping"),
    ],
)
def test_bad_log_settings_name_file_line_column_and_field(written: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(f"version: 1\n{written}\n", "policy.yaml")
    assert str(info.value).startswith(message), str(info.value)


def test_rates_are_written_in_the_unit_the_kernel_prints() -> None:
    assert log_limit(LogRate(rate=(60, "minute"), burst=5)) == LogLimit(1, "second", 5)
    assert log_limit(LogRate(rate=(90, "minute"), burst=5)) == LogLimit(90, "minute", 5)
    assert log_limit(LogRate(rate=(48, "day"), burst=1)) == LogLimit(2, "hour", 1)


def test_iptables_logs_before_every_drop_with_the_entry_tag() -> None:
    ruleset = compile_policy(parse_policy(POLICY, "policy.yaml"), STATE).ruleset
    chains = render_iptables(ruleset, "ipv6").chains
    for name, rules in chains.items():
        if rules[-1] == "-j DROP":
            assert "-j NFLOG" in rules[-2], name
            assert "--nflog-group 2710 --nflog-size 128" in rules[-2]
    web_in = next(rules for name, rules in chains.items() if name.startswith("DOCKWALL-I-a1"))
    assert '--nflog-prefix "dw:i:p4"' in web_in[-2]
    assert "--hashlimit-name dwi20s50" in web_in[-2], "one bucket per direction and rate"
    assert '--nflog-prefix "dw:p:d"' in chains["DOCKWALL-PEERS"][-2]


def test_nft_logs_before_every_drop_and_loads_as_a_script() -> None:
    ruleset = compile_policy(parse_policy(POLICY, "policy.yaml"), STATE).ruleset
    commands = render_nft(ruleset)
    view = table_view(added_objects(commands))
    assert view.sets["log-ingress"].declaration == "rate 20/second burst 50 packets"
    for name, chain in view.chains.items():
        if chain.rules and chain.rules[-1] == "counter drop":
            assert chain.rules[-2].startswith("limit name log-"), name
    assert 'limit name log-ingress counter log prefix "dw:i:p4" group 2710 snaplen 128' in (
        view.chains["in-web"].rules
    )
    text = script(commands, view)
    assert "add limit inet dockwall log-egress { rate 20/second burst 50 packets; }" in text


def test_tags_map_back_to_the_policy_entry() -> None:
    names = {"a1a1a1a1a1a1": "web"}.get
    assert parse_prefix(log_prefix("egress", "p14")) is not None
    decoded = parse_prefix("dw:e:p14+l.a1a1a1a1a1a1")
    assert decoded is not None and decoded.direction == "egress"
    text = describe_tag(decoded.tag, "egress", "policy.yaml", lambda k: names(k) or k)
    assert text == "policy.yaml:14 + label dockwall.egress on web"
    assert describe_tag("d", "ingress", "p.yaml", str) == "defaults"
    assert (
        describe_tag("h.ab", "ingress", "p.yaml", str) == "held closed: conflicting entries for ab"
    )
    assert parse_prefix("ufw-block") is None
    assert parse_prefix("dw:x:d") is None


def test_each_entry_gets_the_tag_of_its_line() -> None:
    state_policy = POLICY + "  - name: db\n    ingress: deny\n"
    ruleset = compile_policy(parse_policy(state_policy, "policy.yaml"), STATE).ruleset
    tags = {g.name: (g.ingress.tag if g.ingress else None) for g in ruleset.guards}
    assert tags["web"] == "p4" and tags["db"] == "p9"


def test_explain_takes_log_rules_as_non_terminating() -> None:
    ruleset = compile_policy(parse_policy(POLICY, "policy.yaml"), STATE).ruleset
    desired = render_iptables(ruleset, "ipv4")
    lines = ["*filter", *(f":{n} - [0:0]" for n in desired.chains)]
    lines += [f"-A {n} {r}" for n, rules in desired.chains.items() for r in rules]
    (table,) = parse_iptables_save("\n".join([*lines, "COMMIT", ""]), 4, "iptables-nft")
    logs = [r for c in table.chains.values() for r in c.rules if "NFLOG" in r.text]
    assert logs and all(isinstance(r.action, Continue) for r in logs)
    objects = [o["add"] for o in render_nft(ruleset) if "add" in o]
    listing = json.dumps({"nftables": objects})
    (nft,) = parse_nft_json(listing)
    nft_logs = [r for c in nft.chains.values() for r in c.rules if "log prefix" in r.text]
    assert nft_logs and all(isinstance(r.action, Continue) for r in nft_logs)
    drops = [r for c in nft.chains.values() for r in c.rules if isinstance(r.action, Drop)]
    assert drops, "the drop after each log rule is still a drop"
