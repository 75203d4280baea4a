"""The simulator on saved rulesets: Docker 20.10 (lab), Docker 28, Docker 29 nftables."""

from __future__ import annotations

from pathlib import Path

from dockwall.explain.addresses import parse_address
from dockwall.explain.endpoints import start
from dockwall.explain.host import LiveContainer, LiveHost, Published
from dockwall.explain.hostnet import HostNet, parse_addresses, parse_routes
from dockwall.explain.iptables.parse import parse_iptables_save
from dockwall.explain.live_ruleset import LiveRuleset
from dockwall.explain.netfilter import Table
from dockwall.explain.nft.parse import parse_nft_json
from dockwall.explain.simulate import Explanation, explain_connection

DATA = Path(__file__).parent / "data" / "rulesets"


def read(name: str) -> str:
    return (DATA / name).read_text()


def lab_net() -> HostNet:
    routes = parse_routes(read("docker20-lab/ip-route4.json"), 4)
    routes += parse_routes(read("docker20-lab/ip-route6.json"), 6)
    return HostNet(parse_addresses(read("docker20-lab/ip-addr.json")), routes)


def plain_net() -> HostNet:
    return HostNet(
        parse_addresses(read("host-addr.json")), parse_routes(read("host-route4.json"), 4)
    )


def container(name: str, v4: str, v6: str | None = None, *ports: Published) -> LiveContainer:
    addresses = {4: (parse_address(v4)[1],), 6: (parse_address(v6)[1],) if v6 else ()}
    return LiveContainer(name, addresses, tuple(ports))


LAB_CONTAINERS = [
    container("web", "172.17.0.2", "2001:db8:d0c::242:ac11:2", Published("", 8080, 80, "tcp")),
    container("db", "172.30.0.2", "2001:db8:d0c:1::2", Published("", 5432, 5432, "tcp")),
    container("worker", "172.30.0.3", "2001:db8:d0c:1::3"),
]


def lab_state(extra4: str = "", extra6: str = "") -> LiveHost:
    """The lab's Docker 20.10 ruleset, plus hand-written rules applied as with --noflush."""
    tables = parse_iptables_save(
        merge(read("docker20-lab/iptables-save.txt"), extra4), 4, "iptables-nft"
    )
    tables += parse_iptables_save(
        merge(read("docker20-lab/ip6tables-save.txt"), extra6), 6, "iptables-nft"
    )
    return LiveHost(LiveRuleset(tables), lab_net(), list(LAB_CONTAINERS))


def merge(saved: str, extra: str) -> str:
    """Adds `extra` (`:CHAIN`, `-I CHAIN ...`, `-A CHAIN ...`) to the filter table: -I lines
    go before the chain's saved rules (in the order given), -A lines after them."""
    lines = saved.splitlines()
    start = lines.index("*filter")
    end = lines.index("COMMIT", start)
    first_rule = next(i for i in range(start + 1, end + 1) if not lines[i].startswith(("*", ":")))
    extra_lines = extra.splitlines()
    declared = [x for x in extra_lines if x.startswith(":")]
    inserted = [x.replace("-I ", "-A ", 1) for x in extra_lines if x.startswith("-I ")]
    appended = [x for x in extra_lines if x.startswith("-A ")]
    return "\n".join(
        lines[:first_rule] + declared + inserted + lines[first_rule:end] + appended + lines[end:]
    )


def explain(
    state: LiveHost, source: str, destination: str, family: int | None = None
) -> Explanation:
    begin = start(state, source, destination, family)
    return explain_connection(state, begin.packet, begin.local_origin)


def test_published_port_is_dnatted_and_forwarded() -> None:
    result = explain(lab_state(), "192.0.2.100", "host:8080/tcp")
    assert result.verdict == "accept"
    actions = [s.action for s in result.path]
    assert "DNAT" in actions and "forward out docker0" in actions
    assert result.reply == "tcp 172.17.0.2:80 -> 192.0.2.100:41234"


def test_ipv6_published_port_has_no_docker_user() -> None:
    result = explain(lab_state(), "2001:db8:200::7", "host:8080/tcp")
    assert result.verdict == "accept"
    assert not any("DOCKER-USER" in s.where for s in result.path)


def test_article_input_rules_do_not_protect_published_port() -> None:
    rules = (
        "-A INPUT -s 192.0.2.100/32 -p tcp -m tcp --dport 8080 -j ACCEPT\n"
        "-A INPUT -p tcp -m tcp --dport 8080 -j DROP"
    )
    assert explain(lab_state(rules), "198.51.100.7", "host:8080/tcp").verdict == "accept"


def test_input_rules_do_govern_container_to_host_traffic() -> None:
    state = lab_state("-A INPUT -i docker0 -p tcp -m tcp --dport 2222 -j DROP")
    assert explain(state, "container:web", "198.51.100.2:2222/tcp").verdict == "drop"
    assert explain(state, "container:worker", "198.51.100.2:2222/tcp").verdict == "accept"


def test_article_docker_user_drop_kills_ingress_and_egress_but_not_ipv6() -> None:
    state = lab_state("-I DOCKER-USER -d 0.0.0.0/0 -j DROP")
    ingress = explain(state, "192.0.2.100", "host:8080/tcp")
    assert (ingress.verdict, ingress.failed) == ("drop", "original")
    assert explain(state, "container:worker", "203.0.113.10:443/tcp").verdict == "drop"
    assert explain(state, "2001:db8:200::7", "host:8080/tcp").verdict == "accept"


def test_drop_without_state_exemption_kills_the_reply() -> None:
    state = lab_state("-I DOCKER-USER -i br-882e3fc8a3e0 -j RETURN\n-I DOCKER-USER -j DROP")
    result = explain(state, "container:worker", "203.0.113.10:443/tcp")
    assert (result.verdict, result.failed) == ("drop", "reply")


def test_rule_appended_after_docker_20_return_is_dead() -> None:
    state = lab_state("-A DOCKER-USER -j DROP")
    assert explain(state, "container:worker", "203.0.113.10:443/tcp").verdict == "accept"


def test_established_exemption_lets_replies_back() -> None:
    rules = "\n".join(
        [
            "-I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
            "-I DOCKER-USER -i br-882e3fc8a3e0 -j RETURN",
            "-I DOCKER-USER -j DROP",
        ]
    )
    assert explain(lab_state(rules), "container:worker", "203.0.113.10:443/tcp").verdict == "accept"


def test_ctorigdstport_matches_the_published_port() -> None:
    rules = "\n".join(
        [
            ":DOCKWALL-IN - [0:0]",
            "-I DOCKER-USER -i uplink -g DOCKWALL-IN",
            "-A DOCKWALL-IN -s 192.0.2.0/24 -p tcp"
            " -m conntrack --ctorigdstport 8080 --ctdir ORIGINAL -j RETURN",
            "-A DOCKWALL-IN -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
            "-A DOCKWALL-IN -j DROP",
        ]
    )
    state = lab_state(rules)
    assert explain(state, "192.0.2.7", "host:8080/tcp").verdict == "accept"
    assert explain(state, "198.51.100.7", "host:8080/tcp").verdict == "drop"


def test_unsupported_match_that_matters_is_unknown_and_named() -> None:
    state = lab_state("-I DOCKER-USER -m recent --name bad --rcheck -j DROP")
    result = explain(state, "192.0.2.100", "host:8080/tcp")
    assert result.verdict == "unknown"
    assert any("--rcheck" in item for item in result.unknown)


def test_unsupported_match_that_does_not_matter_keeps_the_verdict() -> None:
    state = lab_state(
        "-I DOCKER-USER -m limit --limit 5/min -j LOG\n-I DOCKER-USER -m recent --rcheck -j RETURN"
    )
    result = explain(state, "192.0.2.100", "host:8080/tcp")
    assert result.verdict == "accept"
    assert result.notes


def test_isolation_between_bridges() -> None:
    assert explain(lab_state(), "container:web", "container:db:5432/tcp").verdict == "drop"
    assert explain(lab_state(), "container:worker", "container:db:5432/tcp").verdict == "accept"


def docker28_state() -> LiveHost:
    tables = parse_iptables_save(read("docker28/iptables-save.txt"), 4, "iptables-nft")
    web = container("web", "172.17.0.2")
    return LiveHost(LiveRuleset(tables), plain_net(), [web])


def test_docker28_published_port_and_egress() -> None:
    state = docker28_state()
    assert explain(state, "192.0.2.100", "host:8080/tcp").verdict == "accept"
    assert explain(state, "container:web", "203.0.113.10:443/tcp").verdict == "accept"
    assert explain(state, "192.0.2.100", "host:8081/tcp").verdict == "accept"


def test_docker28_raw_table_drops_direct_access_to_container() -> None:
    result = explain(docker28_state(), "198.51.100.9", "172.17.0.2:80/tcp")
    assert result.verdict == "drop"
    assert any(s.where == "iptables raw PREROUTING" for s in result.path)


def docker29_state() -> LiveHost:
    tables: list[Table] = parse_nft_json(read("docker29-nft/nft.json"))
    return LiveHost(LiveRuleset(tables), plain_net(), [container("web", "172.17.0.2")])


def test_docker29_nftables_published_port_with_user_table() -> None:
    state = docker29_state()
    allowed = explain(state, "192.0.2.100", "host:8080/tcp")
    assert allowed.verdict == "accept"
    assert any("dnat to 172.17.0.2:80" in (s.rule or "") for s in allowed.path)
    denied = explain(state, "203.0.113.5", "host:8080/tcp")
    assert (denied.verdict, denied.failed) == ("drop", "original")
    assert any(s.where == "nft inet user-filter forward" for s in denied.path)


def test_docker29_egress_and_direct_access() -> None:
    state = docker29_state()
    assert explain(state, "container:web", "203.0.113.10:443/tcp").verdict == "accept"
    assert explain(state, "198.51.100.9", "172.17.0.2:80/tcp").verdict == "drop"
