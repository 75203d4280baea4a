"""The lab's authoritative DNS server (dnslib), for zones under example.test.

Runs in the lab's internet namespace on the lab's resolver addresses; the lab's dockerd
is started with `--dns` pointing at it, so no query ever leaves the lab. Its records
live in a JSON file a test rewrites at run time (rotate addresses, change TTLs, add
CNAME chains); the file is read again whenever it changes. Per record:

    {"name": "api.example.test", "type": "A", "value": "192.0.2.100", "ttl": 60}

`truncate: [names]` answers those over UDP with TC set and no records (the client
must retry over TCP); `inject: {name: [records]}` adds records for other owner names
to the answer for `name` (an off-chain A record a forwarder must not learn).

UDP is served by one thread per address from a cache of encoded answers (the query
minus its id -> the answer minus its id, dropped whenever the zone file changes), so a
benchmark measures the forwarder, not dnslib: dnslib's own server starts a thread and
parses and encodes every query. TCP stays dnslib's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RR, DNSError, DNSRecord  # type: ignore[import-untyped]
from dnslib.server import BaseResolver, DNSServer  # type: ignore[import-untyped]

MAX_CHAIN = 16
MAX_CACHED = 10_000
MAX_UDP = 65535


class ZoneFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: tuple[int, int] | None = None
        self.data: dict[str, Any] = {}
        self.lock = threading.Lock()

    def versioned(self) -> tuple[tuple[int, int] | None, dict[str, Any]]:
        """The zone and the file version it was read from (mtime, size)."""
        with self.lock:
            try:
                st = os.stat(self.path)
                version = (st.st_mtime_ns, st.st_size)
                if version != self.seen:
                    self.data = json.loads(self.path.read_text())
                    self.seen = version
            except (OSError, ValueError):
                pass
            return self.seen, self.data


def record(item: dict[str, Any]) -> RR:
    text = f"{item['name']}. {int(item.get('ttl', 60))} IN {item['type']} {item['value']}"
    if item["type"] == "CNAME":
        text += "."
    return RR.fromZone(text)[0]


Index = dict[str, list[dict[str, Any]]]


def indexed(records: list[dict[str, Any]]) -> Index:
    """Records by owner name (lower case): a zone of 10,000 names is read per query."""
    found: Index = {}
    for item in records:
        found.setdefault(item["name"].lower(), []).append(item)
    return found


def lookup(index: Index, name: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in index.get(name, []) if r["type"] == kind]


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: ZoneFile) -> None:
        self.zone = zone
        self.index: tuple[tuple[int, int] | None, Index] = (None, {})
        self.lock = threading.Lock()

    def current(self) -> tuple[dict[str, Any], Index]:
        version, data = self.zone.versioned()
        with self.lock:
            if self.index[0] != version or version is None:
                self.index = (version, indexed(data.get("records", [])))
            return data, self.index[1]

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        data, records = self.current()
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        kind = QTYPE[request.q.qtype]
        if handler.protocol == "udp" and name in data.get("truncate", []):
            reply.header.tc = 1
            return reply
        current = name
        for _ in range(MAX_CHAIN):
            cname = lookup(records, current, "CNAME")
            if cname and kind != "CNAME":
                reply.add_answer(record(cname[0]))
                current = cname[0]["value"].lower().rstrip(".")
                continue
            for item in lookup(records, current, kind):
                reply.add_answer(record(item))
            break
        for item in data.get("inject", {}).get(name, []):
            reply.add_answer(record(item))
        if not reply.rr and name not in records:
            reply.header.rcode = 3
        return reply


@dataclass(frozen=True)
class Udp:
    """What resolve() is told of a UDP query (dnslib passes its handler)."""

    protocol: str = "udp"


class AnswerCache:
    """Encoded UDP answers per query (id excluded), for the zone version they came from."""

    def __init__(self, resolver: ZoneResolver) -> None:
        self.resolver = resolver
        self.version: tuple[int, int] | None = None
        self.answers: dict[bytes, bytes] = {}
        self.lock = threading.Lock()

    def answer(self, data: bytes) -> bytes | None:
        """The reply to a query, or None for a packet dnslib cannot read."""
        version, _ = self.resolver.zone.versioned()
        key = data[2:]
        with self.lock:
            if version != self.version or len(self.answers) > MAX_CACHED:
                self.answers, self.version = {}, version
            cached = self.answers.get(key)
        if cached is None:
            try:
                cached = bytes(self.resolver.resolve(DNSRecord.parse(data), Udp()).pack())
            except DNSError:
                return None
            with self.lock:
                if version == self.version:
                    self.answers[key] = cached
        return data[:2] + cached[2:]


def serve_udp(cache: AnswerCache, address: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    sock.bind((address, port))
    while True:
        data, peer = sock.recvfrom(MAX_UDP)
        try:
            reply = cache.answer(data)
            if reply is not None:
                sock.sendto(reply, peer)
        except Exception:  # one bad query or zone record must not stop the UDP server
            continue


class QuietLogger:
    def __getattr__(self, _: str) -> Any:
        return lambda *args: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lab", required=True, help="the lab's name (for teardown)")
    parser.add_argument("--addr", action="append", required=True)
    parser.add_argument("--zone", required=True, type=Path)
    parser.add_argument("--port", type=int, default=53)
    args = parser.parse_args()
    resolver = ZoneResolver(ZoneFile(args.zone))
    cache = AnswerCache(resolver)
    servers = []
    for address in args.addr:
        server = DNSServer(
            resolver, address=address, port=args.port, tcp=True, logger=QuietLogger()
        )
        server.start_thread()
        servers.append(server)
        udp = threading.Thread(target=serve_udp, args=(cache, address, args.port), daemon=True)
        udp.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
