"""Lazy, memoised iptables-save parsing: the same rules as the token-by-token reader."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from dockwall.errors import DockwallError
from dockwall.explain.iptables.parse import RulesetParseError, parse_iptables_save
from dockwall.explain.iptables.rule import clear_memo, fast_rule, parse_rule, token_rule
from dockwall.explain.netfilter import Table

DATA = Path(__file__).parent / "data" / "rulesets"
SAVED = [
    ("docker20-lab/iptables-save.txt", 4),
    ("docker20-lab/ip6tables-save.txt", 6),
    ("docker28/iptables-save.txt", 4),
]
CHAINS = {"DOCKER", "DOCKER-USER", "DOCKWALL-I-web", "FORWARD"}
TRICKY = [
    "-A FORWARD",
    "-A FORWARD -j DOCKER",
    "-A FORWARD ! -i docker0 -o docker0 -j DOCKER",
    "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
    "-A FORWARD -s 10.0.0.0/8,192.168.0.0/16 -d 172.17.0.2/32 -j DROP",
    "-A FORWARD -p tcp -m tcp ! --dport 80 -j REJECT --reject-with tcp-reset",
    "-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j DROP",
    "-A FORWARD -p tcp -m tcp --syn -j DROP",
    "-A FORWARD -p tcp -m tcp --syn",
    "-A FORWARD -p tcp -m multiport --dports 80,443,8000:8100 -j ACCEPT",
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
    "-A FORWARD -m conntrack ! --ctstate NEW -j RETURN",
    "-A FORWARD -p udp -m conntrack --ctorigdstport 8000:8100 --ctdir ORIGINAL -j RETURN",
    "-A FORWARD -m conntrack --ctorigdst 198.51.100.2/32 --ctorigdstport 8080 -j DROP",
    "-A FORWARD -m addrtype --dst-type LOCAL --limit-iface-in -j DOCKER",
    "-A FORWARD -p tcp -m recent --name ssh --rcheck --seconds 30 -j DROP",
    "-A FORWARD -m set --match-set allow src -j ACCEPT",
    "-A FORWARD -m mark --mark 0x1/0xff -j MARK --set-xmark 0x2/0xffffffff",
    "-A FORWARD -m iprange --src-range 10.0.0.1-10.0.0.9 -j DROP",
    "-A FORWARD -p icmp -m icmp --icmp-type 8 -j ACCEPT",
    "-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 128/0 -j ACCEPT",
    "-A FORWARD -m pkttype --pkt-type unicast -g DOCKWALL-I-web",
    "-A FORWARD -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
    "-A FORWARD -j LOG --log-level 4",
    "-A FORWARD -p all -j ACCEPT",
    "-A FORWARD -s 2001:db8:100::/64 -p tcp -j ACCEPT",
    "-A FORWARD -s 010.0.0.1/32 -j DROP",
    "-A FORWARD -s 10.0.0.0/255.0.0.0 -j DROP",
    "-A FORWARD -m comment --comment plain -j DROP",
    "-A FORWARD -p tcp --dport 22 -j NFQUEUE --queue-num 1",
    "-A FORWARD  -s 10.0.0.1/32 -j DROP",
    "-A FORWARD --source 10.0.0.1/32 --jump DROP",
    "-A FORWARD -p tcp ! -m tcp --dport 1 -j DROP",
    "-A FORWARD -s 10.0.0.1/32 !",
    "-A FORWARD -m hashlimit --hashlimit-upto -5 -j DROP",
]


def rules_of(table: Table) -> dict[str, list[object]]:
    return {name: list(chain.rules) for name, chain in table.chains.items()}


@pytest.mark.parametrize(("name", "version"), SAVED)
def test_lazy_and_eager_parse_to_the_same_rules(name: str, version: int) -> None:
    text = (DATA / name).read_text()
    eager = parse_iptables_save(text, version, "iptables-nft")
    lazy = parse_iptables_save(text, version, "iptables-nft", lazy=True)
    assert [t.rule_count() for t in lazy] == [t.rule_count() for t in eager]
    assert not any(chain.parsed for table in lazy for chain in table.chains.values())
    assert [rules_of(t) for t in lazy] == [rules_of(t) for t in eager]


@pytest.mark.parametrize(("name", "version"), SAVED)
def test_fast_reader_agrees_with_token_reader_on_saved_rules(name: str, version: int) -> None:
    for line in (DATA / name).read_text().splitlines():
        if "-A " in line:
            text = line[line.index("-A ") :]
            chains = {text.split()[1], "DOCKER", "DOCKER-USER", "DOCKER-ISOLATION-STAGE-2"}
            assert parse_rule(text, version, chains) == token_rule(text, version, chains)


@pytest.mark.parametrize("text", TRICKY)
def test_fast_reader_agrees_or_declines(text: str) -> None:
    """Both readers, in both memo states (cold and warm): the same rule or the same error."""
    for _ in range(2):
        try:
            expected = token_rule(text, 6 if "2001:" in text else 4, CHAINS)
        except (DockwallError, ValueError) as exc:
            with pytest.raises(type(exc)):
                parse_rule(text, 6 if "2001:" in text else 4, CHAINS)
            continue
        fast = fast_rule(text, 6 if "2001:" in text else 4, CHAINS)
        assert fast is None or fast == expected, text


def test_fast_reader_declines_what_it_cannot_read() -> None:
    assert fast_rule('-A FORWARD -m comment --comment "a b" -j DROP', 4, CHAINS) is None
    assert fast_rule("-A FORWARD  -s 10.0.0.1/32 -j DROP", 4, CHAINS) is None
    assert fast_rule("-A FORWARD -m hashlimit --hashlimit-upto -5 -j DROP", 4, CHAINS) is None


def test_random_rules_agree() -> None:
    """Random recombinations of real options, with and without negation, memo warm."""
    rng = random.Random(7)
    parts = [
        "-s 10.1.2.3/32", "-d 172.17.0.0/16", "-i docker0", "-o br-1234", "-p tcp", "-p udp",
        "-m tcp --dport 80", "-m udp --sport 53", "-m conntrack --ctstate NEW",
        "-m conntrack --ctorigdstport 8080 --ctdir ORIGINAL", "-m comment --comment dockwall",
        "-m multiport --dports 1:1023", "-m addrtype --src-type LOCAL", "-m mark --mark 0x4",
    ]  # fmt: skip
    targets = ["", " -j ACCEPT", " -j DROP", " -g DOCKWALL-I-web", " -j DOCKER", " -j RETURN"]
    clear_memo()
    for _ in range(400):
        chosen = []
        for part in rng.sample(parts, rng.randint(0, 5)):
            chosen.append(f"! {part}" if rng.random() < 0.2 and not part.startswith("-m") else part)
            if part.startswith("-m") and rng.random() < 0.2:
                option, _, rest = part.partition(" ")
                module, _, values = rest.partition(" ")
                chosen[-1] = f"{option} {module} ! {values}"
        text = " ".join(["-A FORWARD", *chosen]) + rng.choice(targets)
        fast = fast_rule(text, 4, CHAINS)
        assert fast is None or fast == token_rule(text, 4, CHAINS), text
        assert "!" in text or fast is not None, text


def test_a_chain_is_parsed_when_first_read() -> None:
    text = """*filter
:FORWARD DROP [0:0]
:BIG - [0:0]
:OTHER - [0:0]
-A FORWARD -j BIG
-A BIG -s 10.0.0.1/32 -j DROP
-A OTHER -s
COMMIT
"""
    table = parse_iptables_save(text, 4, "iptables-nft", lazy=True)[0]
    assert table.rule_count() == 3
    assert not table.chains["BIG"].parsed
    assert len(table.chains["BIG"].rules) == 1 and table.chains["BIG"].parsed
    with pytest.raises(RulesetParseError, match="line 7: option '-s' needs a value"):
        assert table.chains["OTHER"].rules is None
    with pytest.raises(RulesetParseError, match="line 7"):
        parse_iptables_save(text, 4, "iptables-nft")


def test_structure_errors_are_found_by_the_lazy_read_too() -> None:
    with pytest.raises(RulesetParseError, match="undeclared chain 'NOPE'"):
        parse_iptables_save("*filter\n-A NOPE -j ACCEPT\nCOMMIT\n", 4, "iptables-nft", lazy=True)
    with pytest.raises(RulesetParseError, match="line 3: expected"):
        parse_iptables_save("*filter\n:INPUT ACCEPT\n-I INPUT -j DROP\n", 4, "iptables-nft")


def test_bad_number_is_a_parse_error_not_a_crash() -> None:
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport http -j DROP\nCOMMIT\n"
    with pytest.raises(RulesetParseError, match="line 3"):
        parse_iptables_save(text, 4, "iptables-nft")


def test_bench_returns_a_markdown_table() -> None:
    sys.path.insert(0, str(Path(__file__).parents[2]))
    try:
        from bench.bench_explain import markdown, measure
    finally:
        sys.path.pop(0)
    count, rows = measure(count=200, runs=1)
    text = markdown(count, rows, runs=1)
    assert count == 233
    assert "| stage | wall | CPU |" in text and "bench/bench_explain.py" in text
    assert len(rows) == 5 and all(row.wall_ms > 0 for row in rows)
