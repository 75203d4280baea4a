"""The forwarder: answers containers' DNS, holding answers for names their rules name.

Hold, then answer: for a question some pattern of the asking container matches, every
address on the answer's CNAME chain goes into that pattern's kernel set before the
answer is released, so the container's first packet to it is already allowed. When the
set update fails or takes longer than HOLD_LIMIT, the container gets SERVFAIL (fail
closed: it never holds an address the firewall does not). Questions no pattern of
the container matches are passed through without waiting, or REFUSED when the
container may only resolve its allowed names (`restrict_dns`, against DNS tunnelling).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.rcode

from dockwall.compile.ir import DnsClient
from dockwall.dnsproxy import answers, answerwire, wire
from dockwall.dnsproxy.batch import Batcher
from dockwall.dnsproxy.kernelsets import Element, KernelSets
from dockwall.dnsproxy.learned import Entry, LearnedStore
from dockwall.dnsproxy.upstream import UdpPool, UpstreamError, ask, no_answer

HOLD_LIMIT = 1.0
Log = Callable[[str], None]
Respond = Callable[[bytes], None]


@dataclass(frozen=True)
class Config:
    """Swapped whole after each apply, so a query always sees one consistent version."""

    clients: dict[str, DnsClient]
    upstreams: tuple[str, ...]
    min_ttl: int
    max_ttl: int
    sets: KernelSets

    def lifetime(self, ttl: int) -> int:
        return max(self.min_ttl, min(ttl, self.max_ttl))


@dataclass
class Counts:
    """Written only on the forwarder's event loop, read by the metrics scrape from
    another thread: each field is one int or float replaced whole, so a reader sees a
    value that was true (at worst one query behind), and no lock slows a query down.

    Each query ends in exactly one outcome: `answered` (passed on, nothing to learn),
    `held` (answered once its addresses were in the kernel), `refused` or `servfail`.
    """

    queries: int = 0
    answered: int = 0
    held: int = 0
    learned: int = 0
    refused: int = 0
    servfail: int = 0
    hold_seconds: float = 0.0
    hold_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Asked:
    """A query to pass on: its name, the patterns that want it, and its question
    section when it is a plain query (wire.py), for the long-lived upstream sockets."""

    name: str | None
    patterns: tuple[str, ...]
    question: bytes | None


def reply_to(data: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """An answer with `rcode` to a query that was read as one (so it parses)."""
    response = dns.message.make_response(dns.message.from_wire(data))
    response.set_rcode(rcode)
    return bytes(response.to_wire())


class Forwarder:
    def __init__(self, config: Config, store: LearnedStore, log: Log, debug: bool = False):
        self.config = config
        self.store = store
        self.log = log
        self.debug = debug
        self.counts = Counts()
        self.batcher = Batcher()
        self.pool = UdpPool()
        self.tasks: set[asyncio.Task[bytes]] = set()

    async def answer(self, data: bytes, client: str, use_tcp: bool) -> bytes | None:
        """The bytes to send back, or None for a packet that is not a DNS query."""
        asked = self.classify(data, client)
        if asked is None or isinstance(asked, bytes):
            return asked
        return await self.resolved(data, asked, client, use_tcp)

    def datagram(self, data: bytes, client: str, respond: Respond) -> None:
        """A UDP query, answered through `respond`. A plain one for a name the client's
        rules do not mention costs no task: it goes out on the pool's sockets and its
        answer is sent back from the pool's callback."""
        asked = self.classify(data, client)
        if asked is None:
            return
        if isinstance(asked, bytes):
            respond(asked)
        elif asked.question is not None and not asked.patterns:
            upstreams = self.config.upstreams
            done = functools.partial(self.passed, data, asked, client, upstreams, respond)
            self.pool.send(data, asked.question, upstreams, done)
        else:
            task = asyncio.get_running_loop().create_task(
                self.resolved(data, asked, client, use_tcp=False)
            )
            self.tasks.add(task)
            task.add_done_callback(functools.partial(self.finished, respond))

    def passed(
        self,
        data: bytes,
        asked: Asked,
        client: str,
        upstreams: tuple[str, ...],
        respond: Respond,
        reply: bytes | None,
        problem: BaseException | None,
    ) -> None:
        if reply is None:
            respond(self.servfail(data, asked, client, no_answer(upstreams, problem)))
            return
        self.counts.answered += 1
        respond(reply)

    def finished(self, respond: Respond, task: asyncio.Task[bytes]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        problem = task.exception()
        if problem is None:
            respond(task.result())
        else:
            self.log(f"error: DNS query left unanswered: {problem!r}")

    async def resolved(self, data: bytes, asked: Asked, client: str, use_tcp: bool) -> bytes:
        """The answer to a query that is passed on: the upstream's own, once held if
        its name is wanted, or SERVFAIL."""
        config = self.config
        try:
            if asked.question is not None and not use_tcp:
                reply = await self.pool.ask(data, asked.question, config.upstreams)
            else:
                reply = await ask(data, config.upstreams, use_tcp)
        except UpstreamError as exc:
            return self.servfail(data, asked, client, exc)
        if not asked.patterns:
            self.counts.answered += 1
            return reply
        return await self.held(data, reply, asked.patterns, client, config)

    def servfail(self, data: bytes, asked: Asked, client: str, problem: UpstreamError) -> bytes:
        self.counts.servfail += 1
        self.log(f"warning: SERVFAIL for {asked.name!r} to {client}: {problem}")
        return reply_to(data, dns.rcode.SERVFAIL)

    def classify(self, data: bytes, client: str) -> Asked | bytes | None:
        """What to do with a packet: None (not a query: dropped), bytes (the REFUSED
        reply), or the question to pass on. Plain queries are read from the wire."""
        plain = wire.plain_query(data)
        if plain is not None:
            name: str | None = plain.name
            question: bytes | None = data[wire.HEADER.size : plain.end]
        else:
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                return None
            if query.flags & dns.flags.QR:
                return None
            name, question = answers.question_name(query), None
        self.counts.queries += 1
        who = self.config.clients.get(client)
        patterns = answers.wanted_patterns(who.patterns, name) if who and name else ()
        if who is not None and who.restrict and not patterns:
            self.counts.refused += 1
            self.log(f"warning: refused DNS question {name!r} from {client}: no rule names it")
            return reply_to(data, dns.rcode.REFUSED)
        return Asked(name, patterns, question)

    async def held(
        self,
        query: bytes,
        reply: bytes,
        patterns: tuple[str, ...],
        client: str,
        config: Config,
    ) -> bytes:
        """The reply, once its addresses are in the kernel; SERVFAIL if they are not.
        A plain answer's chain is read from the wire (answerwire), any other by dnspython."""
        found = answerwire.chain(reply)
        if isinstance(found, answerwire.Unread):
            try:
                found = answers.chain(dns.message.from_wire(reply))
            except dns.exception.DNSException:
                self.counts.servfail += 1
                self.log(f"warning: SERVFAIL to {client}: upstream answer unreadable")
                return reply_to(query, dns.rcode.SERVFAIL)
        if found is None:
            self.counts.answered += 1
            return reply
        started = time.perf_counter()
        try:
            async with asyncio.timeout(HOLD_LIMIT):  # no task of its own, unlike wait_for
                await self.learn(found, patterns, config)
        except Exception as exc:  # any failure to update the kernel: fail closed
            self.counts.servfail += 1
            self.log(f"warning: SERVFAIL for {found.name!r} to {client}: set update: {exc!r}")
            return reply_to(query, dns.rcode.SERVFAIL)
        took = time.perf_counter() - started
        self.counts.held += 1
        self.counts.hold_seconds += took
        self.counts.hold_ms = [*self.counts.hold_ms[-999:], took * 1e3]
        return reply

    async def learn(
        self, found: answers.Learned, patterns: tuple[str, ...], config: Config
    ) -> None:
        lifetime = config.lifetime(found.ttl)
        now = time.time()
        elements = [
            Element(p, str(a), lifetime)
            for p in patterns
            for a in found.addresses
            if self.store.needs(p, str(a), lifetime, now)
        ]
        if not elements:
            return
        await self.batcher.add(config.sets, elements)
        self.store.record(
            [Entry(e.pattern, e.address, found.name, now, now + lifetime) for e in elements]
        )
        self.counts.learned += len(elements)
        if self.debug:
            for e in elements:
                self.log(f"debug: learned {e.address} for {found.name} ({e.pattern}), {lifetime}s")
