"""The forwarder's long-lived upstream sockets, its task-free UDP path, and what it
puts back after an apply.

A loopback "resolver" answers as the test says: properly, with a forged reply first
(another question under the right id, or a stray id), or not at all; the client's own
id must come back on the answer, and a server that stays silent must give way to the
next one.
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

from dockwall.compile.ir import DnsClient
from dockwall.dnsproxy import upstream, wire
from dockwall.dnsproxy.forwarder import Config, Forwarder
from dockwall.dnsproxy.kernelsets import Element
from dockwall.dnsproxy.learned import Entry, LearnedStore
from dockwall.dnsproxy.service import DnsService

from .fake_resolver import loopback_resolver

Reply = Callable[[bytes], list[bytes]]
CLIENT = "172.17.0.2"


def answer(data: bytes, name: str | None = None, address: str = "192.0.2.100") -> bytes:
    query = dns.message.from_wire(data)
    asked = name or query.question[0].name.to_text()
    if name is not None:
        query.question[0] = dns.rrset.RRset(dns.name.from_text(name), 1, 1)  # type: ignore[assignment]
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(asked, 60, "IN", "A", address))
    return response.to_wire()


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Reply]]:
    """Answers each query with the datagrams the test's function returns."""
    monkeypatch.setattr(upstream, "TIMEOUT", 0.3)
    replies: list[Reply] = []

    def answer(data: bytes) -> list[bytes]:
        return replies[0](data)

    with loopback_resolver(monkeypatch, answer):
        yield replies


def plain(name: str, query_id: int = 4242) -> tuple[bytes, bytes]:
    query = dns.message.make_query(name, "A", use_edns=False)
    query.id = query_id
    data = query.to_wire()
    found = wire.plain_query(data)
    assert found is not None
    return data, data[wire.HEADER.size : found.end]


def test_forged_replies_are_ignored_and_the_client_id_comes_back(resolver: list[Reply]) -> None:
    def forged_first(data: bytes) -> list[bytes]:
        other_question = answer(data, name="evil.example.test.", address="203.0.113.20")
        stray_id = bytes([data[0] ^ 0xFF, data[1]]) + answer(data, address="203.0.113.20")[2:]
        return [other_question, stray_id, answer(data)]

    resolver.append(forged_first)
    data, question = plain("api.example.test")
    reply = asyncio.run(upstream.UdpPool().ask(data, question, ("127.0.0.1",)))
    message = dns.message.from_wire(reply)
    assert message.id == 4242
    assert [r.address for r in message.answer[0]] == ["192.0.2.100"]


def test_a_silent_server_gives_way_to_the_next(resolver: list[Reply]) -> None:
    resolver.append(lambda data: [answer(data)])
    data, question = plain("api.example.test")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.2", upstream.DNS_PORT))  # the same port, on another address
    try:
        pool = upstream.UdpPool()
        reply = asyncio.run(pool.ask(data, question, ("127.0.0.2", "127.0.0.1")))
        assert dns.message.from_wire(reply).id == 4242
        with pytest.raises(upstream.UpstreamError):
            asyncio.run(pool.ask(data, question, ("127.0.0.2",)))
    finally:
        silent.close()


def test_sockets_rotate_and_concurrent_queries_match(
    resolver: list[Reply], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream, "ROTATE_AFTER", 5)
    resolver.append(lambda data: [answer(data)])
    pool = upstream.UdpPool()

    async def many() -> list[int]:
        queries = [plain(f"n{i}.example.test", query_id=i) for i in range(40)]
        got = await asyncio.gather(*(pool.ask(d, q, ("127.0.0.1",)) for d, q in queries))
        return [dns.message.from_wire(r).id for r in got]

    assert asyncio.run(many()) == list(range(40))
    assert all(len(found) <= upstream.SOCKETS for found in pool.sockets.values())


def test_datagrams_pass_through_and_servfail_without_a_task(
    tmp_path: Path, resolver: list[Reply]
) -> None:
    resolver.append(lambda data: [answer(data)] if b"ok" in data else [])
    client = DnsClient(ipaddress.ip_address(CLIENT), ("api.example.test",), False)
    config = Config({CLIENT: client}, ("127.0.0.1",), 5, 600, Recording())
    logged: list[str] = []
    fwd = Forwarder(config, LearnedStore(tmp_path / "learned.json"), logged.append)
    sent: list[bytes] = []

    async def run() -> None:
        fwd.datagram(plain("ok.example.test")[0], CLIENT, sent.append)
        fwd.datagram(plain("lost.example.test")[0], CLIENT, sent.append)
        fwd.datagram(b"\x00\x01garbage", CLIENT, sent.append)
        assert not fwd.tasks
        for _ in range(100):
            if len(sent) == 2:
                return
            await asyncio.sleep(0.02)

    asyncio.run(run())
    rcodes = sorted(dns.message.from_wire(s).rcode() for s in sent)
    assert rcodes == [dns.rcode.NOERROR, dns.rcode.SERVFAIL]
    assert fwd.counts.answered == 1 and fwd.counts.servfail == 1 and fwd.counts.queries == 2
    assert any("SERVFAIL for 'lost.example.test'" in line for line in logged)


class Recording:
    def __init__(self) -> None:
        self.added: list[list[Element]] = []

    def add(self, elements: Sequence[Element]) -> None:
        self.added.append(list(elements))


def test_each_apply_puts_back_what_was_learned_since_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer held between an apply's read of the live table and its commit went
    into the replaced table: the next configure (after that apply) adds it again."""
    monkeypatch.setenv("DOCKWALL_RUN_DIR", str(tmp_path))
    sets = Recording()
    config = Config({}, ("127.0.0.1",), 5, 600, sets)
    service = DnsService(config, 0, lambda _: None)
    now = time.time()
    service.store.record([Entry("p", "192.0.2.1", "a.example.test", now - 100, now + 300)])
    service.configure(config)  # the first: everything live goes back
    assert [e.address for batch in sets.added for e in batch] == ["192.0.2.1"]
    sets.added.clear()
    learned = time.time()
    service.store.record([Entry("p", "192.0.2.2", "b.example.test", learned, learned + 300)])
    service.configure(config)
    assert [e.address for batch in sets.added for e in batch] == ["192.0.2.2"]
    sets.added.clear()
    service.configure(config)
    assert [e for batch in sets.added for e in batch] == []
