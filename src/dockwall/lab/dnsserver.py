"""The lab's authoritative DNS server (dnslib), for zones under example.test.

Runs in the lab's internet namespace on the lab's resolver addresses; the lab's dockerd
is started with `--dns` pointing at it, so no query ever leaves the lab. Its records
live in a JSON file a test rewrites at run time (rotate addresses, change TTLs, add
CNAME chains); the file is read again whenever it changes. Per record:

    {"name": "api.example.test", "type": "A", "value": "192.0.2.100", "ttl": 60}

`truncate: [names]` answers those over UDP with TC set and no records (the client
must retry over TCP); `inject: {name: [records]}` adds records for other owner names
to the answer for `name` (an off-chain A record a forwarder must not learn).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RR, DNSRecord  # type: ignore[import-untyped]
from dnslib.server import BaseResolver, DNSServer  # type: ignore[import-untyped]

MAX_CHAIN = 16


class ZoneFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: tuple[int, int] | None = None
        self.data: dict[str, Any] = {}
        self.lock = threading.Lock()

    def current(self) -> dict[str, Any]:
        with self.lock:
            try:
                st = os.stat(self.path)
                version = (st.st_mtime_ns, st.st_size)
                if version != self.seen:
                    self.data = json.loads(self.path.read_text())
                    self.seen = version
            except (OSError, ValueError):
                pass
            return self.data


def record(item: dict[str, Any]) -> RR:
    text = f"{item['name']}. {int(item.get('ttl', 60))} IN {item['type']} {item['value']}"
    if item["type"] == "CNAME":
        text += "."
    return RR.fromZone(text)[0]


def lookup(records: list[dict[str, Any]], name: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["name"].lower() == name and r["type"] == kind]


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: ZoneFile) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        data = self.zone.current()
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        kind = QTYPE[request.q.qtype]
        if handler.protocol == "udp" and name in data.get("truncate", []):
            reply.header.tc = 1
            return reply
        records = data.get("records", [])
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
        if not reply.rr and not any(r["name"].lower() == name for r in records):
            reply.header.rcode = 3
        return reply


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
    servers = []
    for address in args.addr:
        for tcp in (False, True):
            server = DNSServer(
                resolver, address=address, port=args.port, tcp=tcp, logger=QuietLogger()
            )
            server.start_thread()
            servers.append(server)
    threading.Event().wait()


if __name__ == "__main__":
    main()
