"""The forwarder as a long-running service of the agent: its own thread and event loop.

It listens on the forwarder port of the host on every address (UDP and TCP, IPv4 and
IPv6): containers' DNS arrives there redirected, at the address of their bridge. The
agent hands it a new Config after each apply and it re-adds, once, what a previous run
learned and had not expired (so an agent restart forgets nothing). Learned entries
are written to the run dir a second after they change.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import socket
import struct
import sys
import threading
import time

from dockwall.dnsproxy.forwarder import Config, Forwarder, Log
from dockwall.dnsproxy.kernelsets import Element
from dockwall.dnsproxy.learned import LearnedStore

SAVE_EVERY = 1.0
START_TIMEOUT = 10.0
READ_BATCH = 64
MAX_UDP = 65535
RECEIVE_BUFFER = 1 << 20  # a burst of queries waits here while a batch is handled
SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005


class UdpServer:
    """Reads its socket without a transport: every datagram waiting is read in one
    wake-up and handed to the forwarder with a way to answer it. A reply that the
    socket cannot take at once is dropped (the client asks again, as UDP clients do)."""

    def __init__(
        self, forwarder: Forwarder, sock: socket.socket, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.forwarder = forwarder
        self.sock = sock
        loop.add_reader(sock.fileno(), self.readable)

    def readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                data, addr = self.sock.recvfrom(MAX_UDP)
            except BlockingIOError:
                return
            except OSError:
                continue
            respond = functools.partial(self.send, addr)
            self.forwarder.datagram(data, client_address(addr[0]), respond)

    def send(self, addr: tuple[str, int] | tuple[str, int, int, int], reply: bytes) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(reply, addr)


def client_address(text: str) -> str:
    """IPv4 clients of a dual-stack socket appear as ::ffff:a.b.c.d."""
    return text.removeprefix("::ffff:")


async def tcp_client(
    forwarder: Forwarder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    peer = writer.get_extra_info("peername")
    client = client_address(peer[0]) if peer else ""
    try:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            answer = await forwarder.answer(await reader.readexactly(length), client, use_tcp=True)
            if answer is None:
                break
            writer.write(struct.pack("!H", len(answer)) + answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, struct.error):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def bound(family: socket.AddressFamily, kind: socket.SocketKind, port: int) -> socket.socket:
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    sock.setblocking(False)
    return sock


class DnsService:
    """Started by the agent the first time a ruleset has DNS clients; stopped with it."""

    def __init__(self, config: Config, port: int, log: Log, debug: bool = False) -> None:
        self.store = LearnedStore()
        self.store.load()
        self.forwarder = Forwarder(config, self.store, log, debug)
        self.port = port
        self.log = log
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.problem: BaseException | None = None
        self.restored = False
        self.configured = 0.0
        self.saver: asyncio.Task[None] | None = None
        self.thread = threading.Thread(target=self.run, name="dockwall-dns", daemon=True)

    def start(self) -> None:
        """Two process-wide settings for the forwarder's latency, as the agent's threads
        share one interpreter. The objects that exist now (modules, the agent's set-up:
        55,000 objects after the imports alone) are frozen out of the cyclic collector,
        whose full passes over them took 30 ms each, every few hundred lookups, holding
        every thread: the learned lookups' p99 was those pauses. And the GIL switch
        interval is shortened: each time the forwarder's thread gives the GIL up for a
        system call (a learned lookup makes about ten) while another thread runs Python
        (the drift check's plan, once a second), it waited out that thread's interval,
        5 ms by default."""
        gc.freeze()
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self.thread.start()
        if not self.ready.wait(START_TIMEOUT) or self.problem is not None:
            raise OSError(f"DNS forwarder did not start on port {self.port}: {self.problem}")

    def configure(self, config: Config) -> None:
        """A new version after an apply. The first time (the sets exist now) everything
        a previous run learned goes back in; after that, what was learned since the
        previous apply: an answer held while this apply read the live table and before
        its commit went into the table the commit replaced, so it is added again."""
        self.forwarder.config = config
        since, self.configured = self.configured, time.time()
        if not self.restored:
            self.restored = True
            self.restore(config, 0.0)
        else:
            self.restore(config, since)

    def restore(self, config: Config, since: float) -> None:
        """Puts back the live entries learned (or refreshed) at `since` or later."""
        now = time.time()
        elements = [
            Element(e.pattern, e.address, int(e.left(now)))
            for e in self.store.live(now)
            if e.left(now) >= 1 and e.learned >= since
        ]
        try:
            config.sets.add(elements)
        except Exception as exc:  # the sets of an old policy may be gone: nothing to restore
            self.log(f"warning: could not restore {len(elements)} learned address(es): {exc}")
            return
        if elements and not since:
            self.log(f"restored {len(elements)} learned address(es) from the last run")

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.listen())
        except BaseException as exc:  # reported to start(); the agent goes on without DNS
            self.problem = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        for family in (socket.AF_INET, socket.AF_INET6):
            udp = bound(family, socket.SOCK_DGRAM, self.port)
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            UdpServer(self.forwarder, udp, loop)
            tcp = bound(family, socket.SOCK_STREAM, self.port)
            await asyncio.start_server(
                lambda r, w: tcp_client(self.forwarder, r, w), sock=tcp, backlog=1024
            )
        self.saver = loop.create_task(self.keep_saved())

    async def keep_saved(self) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY)
            try:
                await asyncio.to_thread(self.store.save)
            except OSError as exc:
                self.log(f"warning: cannot save learned addresses: {exc}")

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        with contextlib.suppress(OSError):
            self.store.save()
