"""A fast DNS load generator for bench_dns, run in a container's network namespace.

Queries are encoded once up front; sockets are raw non-blocking UDP, each with its own
16-bit id space; a reply counts only when its id, source and question match the query
in flight, so a late or stray datagram never passes for an answer. One process, one
selector, no DNS library on the hot path: at the rates measured here it spends a small
share of one core, so the forwarder, not the generator, sets the pace.

stdin: {"server": ADDR, "names": [...], "parallel": N, "seconds": S (optional)}
Sequential when N is 1 (each name once, latency per lookup); with N > 1 it keeps N in
flight, cycling through the names until S seconds have passed (or each name once when
S is absent). stdout: {"ms": [...], "answered": A, "failed": F, "timeouts": T,
"seconds": S}: failed counts timeouts and answers with an rcode other than NOERROR.
"""

from __future__ import annotations

import json
import selectors
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

TIMEOUT = 2.0
SOCKETS = 4
PORT = 53
A_RECORD = 1
IN_CLASS = 1
RD_FLAG = 0x0100


def question(name: str) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return labels + b"\x00" + struct.pack("!HH", A_RECORD, IN_CLASS)


def query(query_id: int, asked: bytes) -> bytes:
    return struct.pack("!HHHHHH", query_id, RD_FLAG, 1, 0, 0, 0) + asked


@dataclass
class Flight:
    """The queries of one socket that are waiting: id -> (question, sent at)."""

    sock: socket.socket
    waiting: dict[int, tuple[bytes, float]] = field(default_factory=dict)
    next_id: int = 1

    def send(self, asked: bytes, now: float) -> None:
        while self.next_id in self.waiting:
            self.next_id = self.next_id % 0xFFFF + 1
        query_id = self.next_id
        self.next_id = query_id % 0xFFFF + 1
        self.sock.send(query(query_id, asked))  # raises (e.g. refused): the caller counts it
        self.waiting[query_id] = (asked, now)

    def answered(self, reply: bytes) -> float | None:
        """The send time of the query this reply answers, or None if it answers none
        (its rcode is read by the caller)."""
        if len(reply) < 12 or not reply[2] & 0x80:
            return None
        (query_id,) = struct.unpack_from("!H", reply)
        found = self.waiting.get(query_id)
        if found is None or reply[12 : 12 + len(found[0])].lower() != found[0].lower():
            return None
        del self.waiting[query_id]
        return found[1]

    def expired(self, now: float) -> int:
        late = [i for i, (_, sent) in self.waiting.items() if now - sent > TIMEOUT]
        for query_id in late:
            del self.waiting[query_id]
        return len(late)


def flights(server: str, count: int) -> list[Flight]:
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    found = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.connect((server, PORT))
        sock.setblocking(False)
        found.append(Flight(sock))
    return found


def run(server: str, names: list[str], parallel: int, seconds: float | None) -> dict[str, object]:
    asked = [question(n) for n in names]
    pool = flights(server, 1 if parallel == 1 else SOCKETS)
    selector = selectors.DefaultSelector()
    for flight in pool:
        selector.register(flight.sock, selectors.EVENT_READ, flight)
    ms: list[float] = []
    failed = sent = errors = 0
    started = time.perf_counter()
    deadline = started + seconds if seconds else None

    def more(now: float) -> bool:
        if deadline is not None:
            return now < deadline
        return sent < len(asked)

    def in_flight() -> int:
        return sum(len(f.waiting) for f in pool)

    last_sweep = started
    while True:
        now = time.perf_counter()
        while more(now) and in_flight() < parallel:
            try:
                pool[sent % len(pool)].send(asked[sent % len(asked)], now)
            except OSError:  # an ICMP error of an earlier query, reported on this send
                failed += 1
            sent += 1
        if not more(now) and not in_flight():
            break
        for key, _ in selector.select(0.05):
            flight: Flight = key.data
            while True:
                try:
                    reply = flight.sock.recv(4096)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    continue
                at = flight.answered(reply)
                if at is not None:
                    ms.append((time.perf_counter() - at) * 1e3)
                    errors += reply[3] & 0x0F != 0
        now = time.perf_counter()
        if now - last_sweep > 0.1:
            last_sweep = now
            failed += sum(f.expired(now) for f in pool)
    ended = deadline if deadline is not None else time.perf_counter()
    return {
        "ms": ms,
        "answered": len(ms),
        "failed": failed + errors,
        "timeouts": failed,
        "seconds": ended - started,
    }


def main() -> None:
    job = json.loads(sys.stdin.read())
    seconds = job.get("seconds")
    result = run(job["server"], job["names"], int(job["parallel"]), seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
