"""`dockwall agent`: keep the firewall equal to the policy while Docker changes."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from dockwall.agent.dns import DnsHost
from dockwall.agent.loop import Agent, AgentConfig
from dockwall.agent.source import docker_session
from dockwall.commands.options import DEFAULT, BackendOption, MaxBytesOption, PolicyOption
from dockwall.dnsproxy.metrics import DnsCollector
from dockwall.engine import default_engine
from dockwall.observe.hosting import DEFAULT_LISTEN, Listen, Observe, parse_listen
from dockwall.observe.web import is_loopback
from dockwall.sources.interfaces import link_watch


def log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    sys.stderr.write(f"{stamp} dockwall-agent: {message}\n")
    sys.stderr.flush()


def web_token(listen: Listen | None, allow_remote: bool, token_file: Path | None) -> str | None:
    """A non-local listener is refused unless asked for explicitly and guarded by a token."""
    token = None
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise typer.BadParameter(
                f"{token_file}: {exc}", param_hint="--metrics-token-file"
            ) from None
        if len(token) < 16:
            raise typer.BadParameter(
                f"{token_file}: the token must be at least 16 characters",
                param_hint="--metrics-token-file",
            )
    remote = listen is not None and not is_loopback(listen.host)
    if remote and (not allow_remote or token is None):
        raise typer.BadParameter(
            f"{listen.host if listen else ''} is reachable from other hosts: add "
            "--metrics-allow-remote and --metrics-token-file",
            param_hint="--metrics-listen",
        )
    return token


def agent(
    policy: PolicyOption = DEFAULT,
    backend: BackendOption = None,
    drift_interval: Annotated[
        float, typer.Option(help="Seconds between checks that our rules are still in place.")
    ] = 1.0,
    max_policy_bytes: MaxBytesOption = None,
    metrics_listen: Annotated[
        str,
        typer.Option(
            help="ADDRESS:PORT for /metrics and the read-only page, or `off`. Any address "
            "but loopback needs --metrics-allow-remote and --metrics-token-file."
        ),
    ] = DEFAULT_LISTEN,
    metrics_allow_remote: Annotated[
        bool, typer.Option(help="Allow --metrics-listen on an address other hosts can reach.")
    ] = False,
    metrics_token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the bearer token every request must carry."),
    ] = None,
) -> None:
    """Follow Docker's events and keep the firewall equal to the policy.

    Reconciles on container start/die/destroy and network connect/disconnect (bursts are
    batched), reconnects to dockerd with a full resync, restores our rules within
    seconds if anything removes them, and reloads the policy file when it changes.
    Stopping the agent leaves the rules in force. SIGTERM/SIGINT stop it cleanly (a
    transaction under way is finished first).

    Whatever happens to the policy file later (deleted, truncated, a FIFO, too large,
    unparsable), the last good policy stays in force, drift is still repaired, and each
    change of the file's state is logged once. Each reconcile takes the firewall lock
    that `apply` and `reset` take, so they never interleave.
    """
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        log(f"stopping on signal {signum}; the rules stay in force")
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    config = AgentConfig(policy, drift_interval=drift_interval, max_policy_bytes=max_policy_bytes)
    engine = default_engine(backend)
    dns = DnsHost(lambda: engine.runner, log)
    links = None if getattr(engine.runner, "netns", None) else link_watch()
    listen = None if metrics_listen == "off" else parse_listen(metrics_listen)
    observe = Observe(
        policy.name,
        listen,
        web_token(listen, metrics_allow_remote, metrics_token_file),
        collectors=(DnsCollector(dns.forwarder),),
        fqdn_of=dns.learned_name,
    )
    runner = Agent(
        config,
        engine,
        log,
        connect=docker_session,
        services=(dns, *observe.services()),
        after_apply=(dns.enforced, observe.applied),
        generation=dns.generation,
        links=links.changed if links is not None else None,
    )
    observe.agent = runner
    log(f"started with {policy}")
    runner.run(stop)
