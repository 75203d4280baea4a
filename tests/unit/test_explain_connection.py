"""`connection`: the firewall's verdict joined with what listens where the packet lands."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from dockwall.errors import DockwallError
from dockwall.explain.connection import Connection, connection
from dockwall.explain.host import LiveHost
from dockwall.explain.nft.parse import reject_action
from dockwall.explain.nft.printer import show_statement
from dockwall.explain.output import to_json
from dockwall.explain.sockets import Listener, parse_ss

from .test_explain_simulate import explain, lab_state

HOST = "tcp LISTEN 0 128 0.0.0.0:2222 0.0.0.0:* ino:1 sk:1 <->\n"
PROXY = 'tcp LISTEN 0 4096 0.0.0.0:8080 0.0.0.0:* users:(("docker-proxy",pid=7,fd=4)) ino:2 <->\n'
WEB = "tcp LISTEN 0 128 0.0.0.0:80 0.0.0.0:* ino:3 sk:3 <->\n"


def with_pids(state: LiveHost) -> LiveHost:
    state.containers = [replace(c, pid=100 + i) for i, c in enumerate(state.containers)]
    return state


def sockets(host: str = HOST + PROXY, web: str = WEB) -> dict[str | None, tuple[Listener, ...]]:
    return {None: parse_ss(host), "/proc/100/ns/net": parse_ss(web)}


def answer(
    state: LiveHost,
    source: str,
    destination: str,
    tables: dict[str | None, tuple[Listener, ...]] | None = None,
) -> Connection:
    found = sockets() if tables is None else tables

    def read(netns: str | None) -> tuple[Listener, ...]:
        if netns not in found:
            raise DockwallError(f"no table for {netns}")
        return found[netns]

    return connection(explain(state, source, destination), state, read)


def test_nothing_listening_on_the_host_is_refused_and_says_where() -> None:
    conn = answer(lab_state(), "198.51.100.7", "host:7070/tcp")
    assert conn.result == "refused"
    assert conn.headline() == (
        "refused: the firewall lets it through, but nothing listens on 198.51.100.2:7070/tcp"
    )


def test_host_listener_opens() -> None:
    conn = answer(lab_state(), "198.51.100.7", "host:2222/tcp")
    assert conn.result == "open"
    assert conn.listener == "0.0.0.0:2222/tcp"


def test_published_port_is_decided_by_the_container_not_docker_proxy() -> None:
    state = with_pids(lab_state())
    assert answer(state, "198.51.100.7", "host:8080/tcp").result == "open"
    refused = answer(state, "198.51.100.7", "host:8080/tcp", sockets(web=""))
    assert refused.result == "refused"
    assert refused.reason.endswith("nothing listens on 172.17.0.2:80/tcp in container web")


def test_hairpin_to_docker_proxy_follows_the_relay_into_the_container() -> None:
    state = with_pids(lab_state())
    conn = answer(state, "container:web", "198.51.100.2:8080/tcp")
    assert conn.result == "open"
    assert "relays to web:80/tcp" in conn.reason
    closed = answer(state, "container:web", "198.51.100.2:8080/tcp", sockets(web=""))
    assert closed.result == "refused" and "then closes at once" in closed.reason


def test_unreadable_namespace_is_unknown_with_the_fact() -> None:
    conn = answer(lab_state(), "198.51.100.7", "host:8080/tcp")
    assert conn.result == "unknown"
    assert "container web has no running process" in conn.reason


@pytest.mark.parametrize(
    ("target", "words"),
    [("--reject-with tcp-reset", "tcp-reset"), ("", "icmp-port-unreachable")],
)
def test_reject_on_the_first_packet_is_rejected_and_named(target: str, words: str) -> None:
    rule = f"-A INPUT -p tcp -m tcp --dport 2222 -j REJECT {target}".strip()
    conn = answer(lab_state(rule), "198.51.100.7", "host:2222/tcp")
    assert (conn.result, conn.direction) == ("rejected", "original")
    assert conn.rule == rule
    assert conn.reason.endswith(f"answers with {words}")


def test_udp_reject_in_ipv6_defaults_to_icmp6_port_unreachable() -> None:
    state = lab_state("", "-A INPUT -p udp -m udp --dport 2222 -j REJECT")
    conn = answer(state, "2001:db8:200::7", "host:2222/udp")
    assert conn.result == "rejected"
    assert conn.reason.endswith("answers with icmp6-port-unreachable")


def test_drop_names_the_rule_and_the_direction() -> None:
    state = lab_state("-I DOCKER-USER -d 0.0.0.0/0 -j DROP")
    conn = answer(state, "192.0.2.100", "host:8080/tcp")
    assert (conn.result, conn.direction, conn.rule) == (
        "dropped",
        "original",
        "-A DOCKER-USER -d 0.0.0.0/0 -j DROP",
    )


def test_reply_rejected_leaves_the_client_waiting() -> None:
    state = lab_state(
        "-I DOCKER-USER -i br-882e3fc8a3e0 -j RETURN\n"
        "-I DOCKER-USER -j REJECT --reject-with icmp-host-prohibited"
    )
    conn = answer(state, "container:worker", "203.0.113.10:443/tcp")
    assert (conn.result, conn.direction) == ("dropped", "reply")
    assert conn.reason.startswith("the reply is rejected by")


def test_destination_beyond_this_host_opens_when_the_firewall_passes_it() -> None:
    conn = answer(lab_state(), "container:worker", "203.0.113.10:443/tcp")
    assert conn.result == "open" and "beyond this host" in conn.reason


def test_echo_needs_no_listener() -> None:
    assert answer(lab_state(), "198.51.100.7", "198.51.100.2").result == "open"


def test_unknown_verdict_is_unknown_connection_naming_the_match() -> None:
    state = lab_state("-I DOCKER-USER -m recent --name bad --rcheck -j DROP")
    conn = answer(state, "192.0.2.100", "host:8080/tcp")
    assert conn.result == "unknown" and "--rcheck" in conn.reason


def test_nft_reject_statements() -> None:
    assert reject_action({"type": "tcp reset"}).reject == "tcp reset"
    assert reject_action({"type": "icmpx", "expr": "port-unreachable"}).reject == (
        "icmpx port-unreachable"
    )
    assert reject_action(None).reject == "icmpx port-unreachable"
    assert reject_action({"type": "icmp", "expr": "host-prohibited"}).reject == (
        "icmp host-prohibited"
    )


def test_json_has_connection_and_its_detail() -> None:
    state = lab_state()
    result = explain(state, "198.51.100.7", "host:7070/tcp")
    data = json.loads(to_json(result, connection(result, state, lambda _: parse_ss(HOST))))
    assert (data["connection"], data["verdict"]) == ("refused", "accept")
    assert "nothing listens" in data["connection_detail"]["reason"]
    assert "delivered" not in data


def test_soft_icmp_reject_warns_that_udp_clients_do_not_hear_it() -> None:
    rule = "-A INPUT -p udp -m udp --dport 2222 -j REJECT --reject-with icmp-host-unreachable"
    udp = answer(lab_state(rule), "198.51.100.7", "host:2222/udp")
    assert udp.result == "rejected" and "UDP socket ignores" in udp.reason
    hard = rule.replace("icmp-host-unreachable", "icmp-admin-prohibited")
    assert "ignores" not in answer(lab_state(hard), "198.51.100.7", "host:2222/udp").reason


def test_nft_reject_reads_as_nft_lists_it() -> None:
    assert show_statement({"reject": {"type": "tcp reset"}}) == "reject with tcp reset"
    assert show_statement({"reject": {"type": "icmpx", "expr": "port-unreachable"}}) == (
        "reject with icmpx type port-unreachable"
    )
    assert show_statement({"reject": None}) == "reject"
