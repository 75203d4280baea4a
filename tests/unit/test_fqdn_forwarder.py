"""The forwarder's decisions: what is learned from an answer, held, refused or SERVFAILed.

The kernel sets are a recording stand-in here (the lab test loads real ones); the
upstream is a real UDP socket on loopback answering with dnspython messages.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest
from prometheus_client import CollectorRegistry

from dockwall.backends.iptables import fqdn as ipt_fqdn
from dockwall.backends.nftables import fqdn as nft_fqdn
from dockwall.compile.ir import DnsClient
from dockwall.dnsproxy import answers, upstream
from dockwall.dnsproxy.batch import Batcher, merged
from dockwall.dnsproxy.forwarder import Config, Forwarder
from dockwall.dnsproxy.ipsetnetlink import IpsetNetlink
from dockwall.dnsproxy.kernelsets import Element, IpsetSets, NftSets
from dockwall.dnsproxy.learned import Entry, LearnedStore, read_entries
from dockwall.dnsproxy.metrics import DnsCollector
from dockwall.dnsproxy.netlink import SetElement
from dockwall.dnsproxy.nftnetlink import NftNetlink
from dockwall.dnsproxy.report import named_destination
from tests.unit.fakes import FakeRunner

from .fake_resolver import loopback_resolver

Answer = Callable[[dns.message.Message], dns.message.Message]
CLIENT = "172.17.0.2"


def response(
    query: dns.message.Message, *records: tuple[str, int, str, str]
) -> dns.message.Message:
    reply = dns.message.make_response(query)
    for name, ttl, kind, value in records:
        reply.answer.append(dns.rrset.from_text(name, ttl, "IN", kind, value))
    return reply


def asked(name: str, kind: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, kind)


def test_only_the_chain_from_the_question_counts() -> None:
    query = asked("www.example.test")
    reply = response(
        query,
        ("www.example.test.", 300, "CNAME", "edge.cdn.example.test."),
        ("edge.cdn.example.test.", 20, "A", "203.0.113.10"),
        ("evil.example.test.", 300, "A", "203.0.113.20"),
    )
    found = answers.chain(reply)
    assert found == answers.Learned("www.example.test", (ipaddress.ip_address("203.0.113.10"),), 20)


def test_a_cname_loop_ends() -> None:
    query = asked("a.example.test")
    reply = response(
        query,
        ("a.example.test.", 60, "CNAME", "b.example.test."),
        ("b.example.test.", 60, "CNAME", "a.example.test."),
    )
    assert answers.chain(reply) is None


class Recording:
    def __init__(self, fail: bool = False) -> None:
        self.added: list[Element] = []
        self.fail = fail

    def add(self, elements: Sequence[Element]) -> None:
        if self.fail:
            raise OSError("set is gone")
        self.added += elements


@pytest.fixture
def upstream_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Answer]]:
    """A loopback resolver answering with whatever the test puts in the list."""
    handlers: list[Answer] = []

    def answer(data: bytes) -> list[bytes]:
        return [handlers[0](dns.message.from_wire(data)).to_wire()]

    with loopback_resolver(monkeypatch, answer):
        yield handlers


def forwarder(
    tmp_path: Path, sets: Recording, patterns: tuple[str, ...], restrict: bool = False
) -> tuple[Forwarder, list[str]]:
    logged: list[str] = []
    client = DnsClient(ipaddress.ip_address(CLIENT), patterns, restrict)
    config = Config({CLIENT: client}, ("127.0.0.1",), 5, 600, sets)
    return Forwarder(config, LearnedStore(tmp_path / "learned.json"), logged.append), logged


def ask(fwd: Forwarder, query: dns.message.Message, client: str = CLIENT) -> dns.message.Message:
    reply = asyncio.run(fwd.answer(query.to_wire(), client, use_tcp=False))
    assert reply is not None
    return dns.message.from_wire(reply)


def test_learned_before_the_answer_with_clamped_ttl(
    tmp_path: Path, upstream_server: list[Answer]
) -> None:
    upstream_server.append(
        lambda q: response(
            q,
            ("api.example.test.", 2, "A", "192.0.2.100"),
            ("evil.example.test.", 300, "A", "203.0.113.20"),
        )
    )
    sets = Recording()
    fwd, _ = forwarder(tmp_path, sets, ("api.example.test", "*.example.test"))
    reply = ask(fwd, asked("api.example.test"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert sorted(sets.added, key=lambda e: e.pattern) == [
        Element("*.example.test", "192.0.2.100", 5),
        Element("api.example.test", "192.0.2.100", 5),
    ]
    fwd.store.save()
    assert {e.address for e in read_entries(tmp_path / "learned.json")} == {"192.0.2.100"}


def test_names_no_rule_mentions_pass_without_learning(
    tmp_path: Path, upstream_server: list[Answer]
) -> None:
    upstream_server.append(lambda q: response(q, ("other.test.", 60, "A", "198.51.100.7")))
    sets = Recording()
    fwd, _ = forwarder(tmp_path, sets, ("api.example.test",))
    assert ask(fwd, asked("other.test")).rcode() == dns.rcode.NOERROR
    assert ask(fwd, asked("other.test"), client="172.17.0.9").rcode() == dns.rcode.NOERROR
    assert sets.added == []


def test_restricted_client_gets_refused_for_other_names(
    tmp_path: Path, upstream_server: list[Answer]
) -> None:
    upstream_server.append(lambda q: response(q, ("leak.attacker.test.", 60, "A", "198.51.100.7")))
    fwd, logged = forwarder(tmp_path, Recording(), ("api.example.test",), restrict=True)
    assert ask(fwd, asked("c2VjcmV0.attacker.test")).rcode() == dns.rcode.REFUSED
    assert any("refused" in line for line in logged)


def test_failed_set_update_is_servfail(tmp_path: Path, upstream_server: list[Answer]) -> None:
    upstream_server.append(lambda q: response(q, ("api.example.test.", 60, "A", "192.0.2.100")))
    sets = Recording(fail=True)
    fwd, logged = forwarder(tmp_path, sets, ("api.example.test",))
    assert ask(fwd, asked("api.example.test")).rcode() == dns.rcode.SERVFAIL
    assert any(line.startswith("warning: SERVFAIL") for line in logged)


def test_no_upstream_is_servfail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "TIMEOUT", 0.2)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    monkeypatch.setattr(upstream, "DNS_PORT", sock.getsockname()[1])
    try:
        fwd, _ = forwarder(tmp_path, Recording(), ("api.example.test",))
        assert ask(fwd, asked("api.example.test")).rcode() == dns.rcode.SERVFAIL
    finally:
        sock.close()


def by_name(query: dns.message.Message) -> dns.message.Message:
    name = query.question[0].name.to_text()
    if name == "api.example.test.":
        return response(query, ("api.example.test.", 60, "A", "192.0.2.100"))
    if name == "new.example.test.":
        return response(query, ("new.example.test.", 60, "AAAA", "2001:db8::7"))
    if name == "gone.example.test.":
        return dns.message.make_response(query)  # NOERROR without addresses: nothing to hold
    return response(query, ("other.test.", 60, "A", "198.51.100.7"))


def test_every_outcome_is_counted_once_and_scraped(
    tmp_path: Path, upstream_server: list[Answer]
) -> None:
    upstream_server.append(by_name)
    sets = Recording()
    fwd, _ = forwarder(tmp_path, sets, ("api.example.test", "*.example.test"), restrict=True)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DnsCollector(lambda: fwd))
    assert registry.get_sample_value("dockwall_dns_queries_total", {"outcome": "held"}) == 0
    assert ask(fwd, asked("api.example.test")).rcode() == dns.rcode.NOERROR  # held, 2 learned
    assert ask(fwd, asked("api.example.test")).rcode() == dns.rcode.NOERROR  # held, known
    assert ask(fwd, asked("gone.example.test")).rcode() == dns.rcode.NOERROR  # answered
    assert ask(fwd, asked("other.test")).rcode() == dns.rcode.REFUSED
    assert ask(fwd, asked("other.test"), client="172.17.0.9").rcode() == dns.rcode.NOERROR
    sets.fail = True
    assert ask(fwd, asked("new.example.test")).rcode() == dns.rcode.SERVFAIL
    sample = registry.get_sample_value
    outcomes = {o: sample("dockwall_dns_queries_total", {"outcome": o}) for o in
                ("answered", "held", "refused", "servfail")}  # fmt: skip
    assert outcomes == {"answered": 2, "held": 2, "refused": 1, "servfail": 1}
    assert fwd.counts.queries == sum(outcomes.values())
    assert sample("dockwall_dns_learned_elements_total") == 2
    assert sample("dockwall_dns_set_update_seconds_count") == 2
    assert 0 < (sample("dockwall_dns_set_update_seconds_sum") or 0) < 2
    for pattern in ("api.example.test", "*.example.test"):
        assert sample("dockwall_dns_learned_addresses", {"pattern": pattern}) == 1


def test_no_forwarder_yet_scrapes_as_zero() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DnsCollector(lambda: None))
    assert registry.get_sample_value("dockwall_dns_queries_total", {"outcome": "refused"}) == 0
    assert registry.get_sample_value("dockwall_dns_learned_elements_total") == 0


def test_learned_names_by_address_expire_and_keep_the_longest_lived(tmp_path: Path) -> None:
    store = LearnedStore(tmp_path / "learned.json")
    store.record(
        [
            Entry("*.example.test", "192.0.2.5", "a.example.test", 0, 100),
            Entry("b.example.test", "192.0.2.5", "b.example.test", 0, 50),
            Entry("b.example.test", "2001:db8::5", "b.example.test", 0, 50),
        ]
    )
    assert store.name_of("192.0.2.5", now=10) == "a.example.test"
    assert store.name_of("2001:db8::5", now=10) == "b.example.test"
    assert store.name_of("198.51.100.1", now=10) is None
    assert store.in_force(now=10) == {"*.example.test": 1, "b.example.test": 2}
    assert store.in_force(now=60) == {"*.example.test": 1}
    assert store.name_of("2001:db8::5", now=60) is None
    store.live(now=200)
    assert store.by_address == {}
    assert store.name_of("192.0.2.5", now=10) is None


def test_nft_refresh_is_add_delete_add_in_one_transaction() -> None:
    runner = FakeRunner(lambda argv, text: (0, ""))
    NftSets(runner).add([Element("api.example.test", "192.0.2.100", 30)])
    ((_, script),) = runner.calls
    assert script is not None
    lines = script.splitlines()
    assert [line.split()[0] for line in lines] == ["add", "delete", "add"]
    assert lines[0] == lines[2] and lines[0].endswith("{ 192.0.2.100 timeout 30s }")


def test_ipset_refresh_uses_exist_with_timeout() -> None:
    runner = FakeRunner(lambda argv, text: (0, ""))
    IpsetSets(runner).add([Element("api.example.test", "2001:db8::1", 30)])
    ((argv, script),) = runner.calls
    assert argv[:3] == ["ipset", "-exist", "restore"]
    assert script is not None and script.endswith("-6 2001:db8::1 timeout 30\n")


def test_batches_keep_the_longest_lifetime() -> None:
    elements = [Element("p", "192.0.2.1", 5), Element("p", "192.0.2.1", 60), Element("q", "x", 1)]
    assert sorted(merged(elements), key=lambda e: e.pattern) == [
        Element("p", "192.0.2.1", 60),
        Element("q", "x", 1),
    ]


class CountedSets:
    """Kernel sets that record each call (one call is one transaction)."""

    def __init__(self) -> None:
        self.calls: list[list[Element]] = []

    def add(self, elements: Sequence[Element]) -> None:
        self.calls.append(list(elements))


def test_answers_held_together_go_in_one_transaction() -> None:
    sets, batcher = CountedSets(), Batcher()

    async def together() -> None:
        await asyncio.gather(
            batcher.add(sets, [Element("p", "192.0.2.1", 5)]),
            batcher.add(sets, [Element("p", "192.0.2.2", 5)]),
        )

    asyncio.run(together())
    assert [[e.address for e in call] for call in sets.calls] == [["192.0.2.1", "192.0.2.2"]]


class IpsetRecorder(IpsetNetlink):
    def __init__(self) -> None:  # no socket
        self.sent: list[SetElement] = []

    def add(self, items: Sequence[SetElement]) -> None:
        self.sent += items


def test_ipsets_by_netlink_name_the_pattern_family_set() -> None:
    runner = FakeRunner(lambda argv, text: (0, ""))
    writer = IpsetRecorder()
    sets = IpsetSets(runner, writer)
    sets.add([Element("api.example.test", "192.0.2.1", 30)])
    assert runner.calls == []
    assert writer.sent == [
        SetElement(ipt_fqdn.set_name("api.example.test", "ipv4"), "192.0.2.1", 30)
    ]


class NetlinkRecorder(NftNetlink):
    def __init__(self) -> None:  # no socket
        self.table = "dockwall"
        self.sent: list[SetElement] = []

    def add(self, items: Sequence[SetElement]) -> None:
        self.sent += items


def test_nft_sets_by_netlink_name_the_pattern_family_set() -> None:
    runner = FakeRunner(lambda argv, text: (0, ""))
    writer = NetlinkRecorder()
    sets = NftSets(runner, netlink=writer)
    sets.add([Element("api.example.test", "2001:db8::1", 30)])
    assert runner.calls == []
    assert writer.sent == [SetElement(nft_fqdn.set_name("api.example.test", 6), "2001:db8::1", 30)]


def test_explain_takes_a_name_as_its_learned_address() -> None:
    now = time.time()
    entries = [
        Entry("api.example.test", "192.0.2.100", "api.example.test", now - 5, now + 30),
        Entry("api.example.test", "2001:db8::1", "api.example.test", now - 5, now + 60),
    ]
    target, said = named_destination("api.example.test:443/tcp", 4, entries)
    assert target == "192.0.2.100:443/tcp"
    assert said and "learned for api.example.test" in said[0] and "expires in" in said[0]
    target, _ = named_destination("API.example.test:443/tcp", None, entries)
    assert target == "[2001:db8::1]:443/tcp"
    assert named_destination("other.example.test:443/tcp", None, entries)[1][0].startswith(
        "other.example.test: no address learned"
    )
    assert named_destination("192.0.2.100:443/tcp", None, entries)[1][0].startswith(
        "192.0.2.100 was learned for api.example.test"
    )
    assert named_destination("container:web:80/tcp", None, entries) == (
        "container:web:80/tcp",
        [],
    )
