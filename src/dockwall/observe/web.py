"""The agent's read-only listener: /metrics, the live page, its data and its drop stream.

Standard library only (no build step, no CDN: the page's files ship in the package).
Nothing served here can change the firewall: only GET and HEAD exist, and every
handler only reads. Bound to 127.0.0.1 unless told otherwise; any other address needs a
bearer token, checked on every request (`Authorization: Bearer ...`, or `?token=` for
the page's event stream, which browsers cannot give headers).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dockwall.observe.journal import follow, read_all

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
RECENT = 200


@dataclass
class Site:
    """What the pages show, read when asked."""

    registry: CollectorRegistry
    state: Callable[[], dict[str, Any]]
    svg: Callable[[], str]
    token: str | None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def static_file(name: str) -> bytes:
    return resources.files("dockwall.observe").joinpath("static", name).read_bytes()


def handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dockwall"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            return

        def authorized(self) -> bool:
            if site.token is None:
                return True
            given = self.headers.get("Authorization", "")
            query = parse_qs(urlsplit(self.path).query).get("token", [""])[0]
            wanted = f"Bearer {site.token}"
            return hmac.compare_digest(given, wanted) or hmac.compare_digest(query, site.token)

        def do_GET(self) -> None:
            if not self.authorized():
                self.send(401, b"a bearer token is required\n", "text/plain; charset=utf-8",
                          {"WWW-Authenticate": "Bearer"})  # fmt: skip
                return
            path = urlsplit(self.path).path
            if path == "/metrics":
                self.send(200, generate_latest(site.registry), CONTENT_TYPE_LATEST)
            elif path in STATIC:
                name, kind = STATIC[path]
                self.send(200, static_file(name), kind)
            elif path == "/api/state":
                self.send(200, json.dumps(site.state()).encode(), "application/json")
            elif path == "/graph.svg":
                self.send(200, site.svg().encode(), "image/svg+xml")
            elif path == "/events":
                self.stream()
            else:
                self.send(404, b"not found\n", "text/plain; charset=utf-8")

        def do_HEAD(self) -> None:
            self.do_GET()

        def refuse(self) -> None:
            self.send(405, b"read-only: only GET\n", "text/plain; charset=utf-8", {"Allow": "GET"})

        do_POST = do_PUT = do_DELETE = do_PATCH = refuse

        def send(
            self, code: int, body: bytes, kind: str, extra: dict[str, str] | None = None
        ) -> None:
            self.send_response(code)
            for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
                self.send_header(key, value)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def stream(self) -> None:
            """Server-sent events: the last drops, then each new journal line."""
            self.send_response(200)
            for key, value in SECURITY_HEADERS.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for entry in list(read_all())[-RECENT:]:
                    self.event(entry)
                for entry in follow():
                    self.event(entry)
            except (BrokenPipeError, ConnectionResetError):
                return

        def event(self, entry: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(entry).encode() + b"\n\n")
            self.wfile.flush()

    return Handler


class Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve(site: Site, host: str, port: int) -> ThreadingHTTPServer:
    """Started on a daemon thread; the caller has checked the bind is allowed."""
    server = (Server6 if ":" in host else ThreadingHTTPServer)((host, port), handler(site))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="web", daemon=True).start()
    return server
