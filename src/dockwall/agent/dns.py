"""The agent hosts the DNS forwarder: started with the first ruleset that has DNS
clients, handed every later ruleset, stopped with the agent.

Agent down means nothing new is learned and nothing new opens: the clients' DNS is
still redirected to the forwarder's port, where nothing listens, so their lookups fail
at once (ICMP port unreachable / TCP reset, not a timeout) while every other container
resolves as before; addresses learned earlier stay open until they expire.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from dockwall.agent.driftgate import Stamp
from dockwall.agent.services import Enforced, Hosting
from dockwall.backends.nftables.expr import TABLE
from dockwall.compile.ir import Dns
from dockwall.dnsproxy import ipsetnetlink, libnft, nftnetlink
from dockwall.dnsproxy.forwarder import Config, Forwarder, Log
from dockwall.dnsproxy.kernelsets import Writers, for_backend
from dockwall.dnsproxy.service import DnsService
from dockwall.errors import DockwallError
from dockwall.runner import Runner

RESOLV_CONF = "/etc/resolv.conf"


def resolv_conf_servers() -> tuple[str, ...]:
    """The host's resolvers: the forwarder asks from the host's namespace, so a loopback
    stub (systemd-resolved's 127.0.0.53) works too. DOCKWALL_RESOLV_CONF overrides the
    path (the lab points it at its own resolver)."""
    path = Path(os.environ.get("DOCKWALL_RESOLV_CONF", RESOLV_CONF))
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ()
    return tuple(
        words[1] for words in (line.split() for line in lines) if words[:1] == ["nameserver"]
    )


def config_for(dns: Dns, backend: str, runner: Runner, writers: Writers | None = None) -> Config:
    return Config(
        clients={str(c.address): c for c in dns.clients},
        upstreams=dns.upstreams or resolv_conf_servers(),
        min_ttl=dns.min_ttl,
        max_ttl=dns.max_ttl,
        sets=for_backend(backend, runner, writers),
    )


def writer_name(backend: str, writers: Writers) -> str:
    """How learned addresses reach the kernel, for the agent's log."""
    if backend != "nftables":
        return "netlink" if writers.ipset else "ipset restore"
    return "netlink" if writers.nft else "libnftables" if writers.library else "nft -f"


class DnsHost:
    """An agent service (agent/services.py): the forwarder starts with the first ruleset
    that has DNS clients (`after_apply`), and stops with the agent."""

    name = "dns-forwarder"

    def __init__(self, runner: Callable[[], Runner], log: Log) -> None:
        self.runner = runner
        self.log = log
        self.service: DnsService | None = None
        self.debug = os.environ.get("DOCKWALL_LOG_LEVEL", "").lower() == "debug"
        self.writers: dict[str, Writers] = {}
        self.nft: nftnetlink.NftNetlink | None = None

    def set_writers(self, backend: str, runner: Runner) -> Writers:
        """The in-process writers, made once per backend: the netlink socket, else (it
        could not be opened) libnftables for nftables. Only when the runner acts on this
        process's own namespace (the socket and the library act where the process is;
        a runner that enters another namespace must go through nft or ipset itself)."""
        if getattr(runner, "netns", None):
            return Writers()
        if backend not in self.writers:
            if backend == "nftables":
                nft = self.nft_writer()
                library = None if nft is not None else libnft.load()
                self.writers[backend] = Writers(library=library, nft=nft)
            else:
                self.writers[backend] = Writers(ipset=ipsetnetlink.load())
        return self.writers[backend]

    def nft_writer(self) -> nftnetlink.NftNetlink | None:
        """The nf_tables netlink writer, made once: the forwarder writes through it and
        the drift gate reads its commit count (`generation`)."""
        if self.nft is None:
            self.nft = nftnetlink.load(TABLE)
        return self.nft

    def generation(self) -> Stamp:
        """The agent's drift gate stamp (agent/driftgate.py), read through the writer the
        forwarder commits with, so its commits are counted; only where that socket is in
        the namespace the firewall is written in."""
        writer = None if getattr(self.runner(), "netns", None) else self.nft_writer()
        if writer is None:
            raise DockwallError("no nf_tables netlink socket in the firewall's namespace")
        return writer.stamp()

    def after_apply(self, dns: Dns | None, backend: str) -> None:
        """Called with each ruleset once it is in force (its sets exist)."""
        if dns is None:
            if self.service is not None:  # no clients left: every question passes through
                self.service.configure(replace(self.service.forwarder.config, clients={}))
            return
        runner = self.runner()
        writers = self.set_writers(backend, runner)
        config = config_for(dns, backend, runner, writers)
        if self.service is None:
            service = DnsService(config, dns.port, self.log, self.debug)
            service.start()
            self.service = service
            self.log(
                f"DNS forwarder listening on port {dns.port} (upstreams: "
                f"{', '.join(config.upstreams) or 'none'}; sets written by "
                f"{writer_name(backend, writers)})"
            )
        elif dns.port != self.service.port:
            self.log(
                f"warning: dns.port changed to {dns.port}; restart the agent to move the forwarder"
            )
        self.service.configure(config)

    def forwarder(self) -> Forwarder | None:
        """The running forwarder, for its metrics (None until a ruleset has clients)."""
        return self.service.forwarder if self.service is not None else None

    def learned_name(self, address: str) -> str | None:
        """The name the forwarder learned `address` for, while in force (for the drop
        log's `fqdn`); called from the drop log's thread, the store has its own lock."""
        service = self.service
        return service.store.name_of(address) if service is not None else None

    def start(self, hosting: Hosting) -> None:
        """Nothing to start until a ruleset names domains; the log becomes the agent's."""
        self.log = hosting.log

    def enforced(self, enforced: Enforced) -> None:
        """The after-apply hook: the sets of this ruleset exist now."""
        try:
            self.after_apply(enforced.compiled.ruleset.dns, enforced.backend)
        except OSError as exc:
            self.log(f"error: DNS forwarder: {exc}")

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
