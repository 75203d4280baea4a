"""`dockwall status`: what is protected, how, and what the rules have matched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from dockwall.commands.options import (
    DEFAULT,
    BackendOption,
    JsonOption,
    MaxBytesOption,
    PolicyOption,
)
from dockwall.commands.report import console, warn
from dockwall.compile.ir import Allow, Filter, Guard
from dockwall.engine import Inputs, default_engine, read_inputs
from dockwall.model.state import Container
from dockwall.statefile import load_agent_state


def describe_allow(allow: Allow, peer_word: str) -> str:
    ports = (
        ", ".join(
            p.proto
            if p.first is None
            else f"{p.first}{'' if p.last == p.first else f'-{p.last}'}/{p.proto}"
            for p in allow.ports
        )
        or "all ports"
    )
    peers = "any" if allow.peers is None else ", ".join(map(str, allow.peers))
    kind = " (host port)" if allow.original else ""
    return f"{ports}{kind} {peer_word} {peers}"


def describe(filter_: Filter | None, peer_word: str) -> str:
    if filter_ is None:
        return "allow all"
    if not filter_.allows:
        return "deny all"
    return "; ".join(describe_allow(a, peer_word) for a in filter_.allows)


def container_row(container: Container, guard: Guard | None, inputs: Inputs) -> dict[str, Any]:
    ruleset = inputs.compiled.ruleset
    ingress = guard.ingress if guard else ruleset.default_ingress
    egress = guard.egress if guard else ruleset.default_egress
    return {
        "name": container.name,
        "id": container.short_id,
        "entry": guard.origin if guard else "defaults",
        "networks": [
            {
                "network": a.network,
                "interface": a.interface,
                "addresses": [str(x) for x in a.addresses],
            }
            for a in container.attachments
        ],
        "published": [str(p) for p in container.ports],
        "ingress": describe(ingress, "from"),
        "egress": describe(egress, "to"),
    }


def agent_report() -> dict[str, Any]:
    """The agent's own account, marked stale when its process is gone."""
    state = load_agent_state()
    if state is None:
        return {"running": False}
    pid = state.get("pid")
    running = isinstance(pid, int) and Path(f"/proc/{pid}").exists()
    return {**state, "running": running}


def agent_line(state: dict[str, Any]) -> str:
    if not state.get("running"):
        return "agent: [yellow]not running[/] (rules stay in force; start `dockwall agent`)"
    error = f"; last error: {escape(str(state['last_error']))}" if state.get("last_error") else ""
    if state.get("policy_problem"):
        error += f"; [yellow]{escape(str(state['policy_problem']))}[/]"
    enforces = f" enforcing {escape(str(state['policy']))}" if state.get("policy") else ""
    return (
        f"agent: [green]running[/] pid {state['pid']}{enforces}, "
        f"{state.get('reconciles', 0)} reconciles "
        f"(last {state.get('last_reconcile')}, {state.get('last_reconcile_ms')} ms), "
        f"{state.get('repairs', 0)} drift repairs, "
        f"{'connected' if state.get('connected') else 'reconnecting'} to Docker{error}"
    )


def status(
    policy: PolicyOption = DEFAULT,
    backend: BackendOption = None,
    as_json: JsonOption = False,
    max_policy_bytes: MaxBytesOption = None,
) -> None:
    """Containers, networks, published ports, who may reach them, egress, rule counters."""
    inputs = read_inputs(policy, max_policy_bytes)
    engine = default_engine(backend)
    selected, plans = engine.plan(inputs)
    guards = {g.name: g for g in inputs.compiled.ruleset.guards}
    rows = [
        container_row(c, guards.get(c.name), inputs)
        for c in sorted(inputs.state.containers, key=lambda c: c.name)
    ]
    counters = selected.backend.counters()
    agent_state = agent_report()
    report = {
        "backend": selected.backend.name,
        "reason": selected.reason,
        "in_sync": all(p.in_sync for p in plans),
        "agent": agent_state,
        "containers": rows,
        "counters": [c.__dict__ for c in counters],
        "warnings": list(inputs.warnings),
    }
    if as_json:
        console.print_json(json.dumps(report))
        return
    warn(inputs.warnings)
    console.print(
        f"backend: [bold]{selected.backend.name}[/] ({selected.reason}); "
        + (
            "[green]in sync with the policy[/]"
            if report["in_sync"]
            else "[yellow]changes pending: run dockwall plan[/]"
        )
    )
    table = Table("container", "entry", "networks", "published", "ingress", "egress")
    for row in rows:
        nets = "\n".join(
            f"{n['network']} ({n['interface']}) {' '.join(n['addresses'])}" for n in row["networks"]
        )
        table.add_row(
            row["name"],
            row["entry"],
            nets,
            "\n".join(row["published"]),
            row["ingress"],
            row["egress"],
        )
    console.print(table)
    console.print(agent_line(agent_state))
    rules = Table("family", "chain", "rule", "packets", "bytes", title="rule counters")
    for c in counters:
        rules.add_row(c.family, c.where, c.text, str(c.packets), str(c.bytes))
    console.print(rules)
