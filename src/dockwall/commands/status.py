"""`dockwall status`: what is protected, how, and what the rules have matched."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from dockwall.commands.options import DEFAULT, BackendOption, JsonOption, MaxBytesOption
from dockwall.commands.report import console, warn
from dockwall.compile.ir import Allow, Filter, Ruleset
from dockwall.engine import default_engine, read_host_state, read_inputs
from dockwall.errors import DockwallError
from dockwall.model.state import Container
from dockwall.policy.model import BackendChoice
from dockwall.statefile import Applied, load_agent_state, load_applied


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


def container_row(
    container: Container, entry: str, ingress: Filter | None, egress: Filter | None
) -> dict[str, Any]:
    return {
        "name": container.name,
        "id": container.short_id,
        "entry": entry,
        "networks": [
            {
                "network": a.network,
                "interface": a.interface,
                "addresses": [str(x) for x in a.addresses],
            }
            for a in container.attachments
        ],
        "published": list(dict.fromkeys(str(p) for p in container.ports)),
        "ingress": describe(ingress, "from"),
        "egress": describe(egress, "to"),
    }


def ruleset_rows(containers: Iterable[Container], ruleset: Ruleset | None) -> list[dict[str, Any]]:
    """Each container as a ruleset holds it: its guard, else the defaults; with no
    ruleset at all, Docker's own behaviour (nothing restricted)."""
    guards = {g.name: g for g in ruleset.guards} if ruleset else {}
    rows = []
    for c in sorted(containers, key=lambda c: c.name):
        guard = guards.get(c.name)
        if guard is not None:
            rows.append(container_row(c, guard.origin, guard.ingress, guard.egress))
        elif ruleset is not None:
            rows.append(
                container_row(c, "defaults", ruleset.default_ingress, ruleset.default_egress)
            )
        else:
            rows.append(container_row(c, "none (Docker's default)", None, None))
    return rows


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


StatusPolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help=f"The policy file (default: {DEFAULT}; without it, what is live is shown).",
        dir_okay=False,
        show_default=False,
    ),
]


def status(
    policy: StatusPolicyOption = None,
    backend: BackendOption = None,
    as_json: JsonOption = False,
    max_policy_bytes: MaxBytesOption = None,
) -> None:
    """Containers, networks, published ports, who may reach them, egress, rule counters.

    Without a policy file (none at the default path and no -f), it shows what is live:
    the containers and their published ports, who can reach them under the rules now in
    force (dockwall's last applied ones, or Docker's defaults when there are none), and
    dockwall's rules if any.
    """
    if policy is None and not DEFAULT.exists():
        report = live_report(DEFAULT, backend)
    else:
        report = policy_report(policy or DEFAULT, backend, max_policy_bytes)
    if as_json:
        console.print_json(json.dumps(report))
        return
    print_report(report)


def policy_report(
    path: Path, backend: BackendChoice | None, max_bytes: int | None
) -> dict[str, Any]:
    """The status under a policy: its compiled rules and whether they are in force."""
    inputs = read_inputs(path, max_bytes)
    engine = default_engine(backend)
    selected, plans = engine.plan(inputs)
    rows = ruleset_rows(inputs.state.containers, inputs.compiled.ruleset)
    return {
        "policy": str(path),
        "backend": selected.backend.name,
        "reason": selected.reason,
        "in_sync": all(p.in_sync for p in plans),
        "agent": agent_report(),
        "containers": rows,
        "counters": [c.__dict__ for c in selected.backend.counters()],
        "warnings": list(inputs.warnings),
    }


def live_report(path: Path, backend: BackendChoice | None) -> dict[str, Any]:
    """The status with no policy: what Docker runs and what the firewall holds today."""
    state = read_host_state()
    selected = default_engine(backend).selected()
    in_force = selected.backend.installed()
    applied = last_applied() if in_force else None
    return {
        "policy": None,
        "no_policy": f"{path} does not exist",
        "backend": selected.backend.name,
        "reason": selected.reason,
        "in_sync": None,
        "rules_in_force": in_force,
        "applied_ruleset_known": applied is not None,
        "agent": agent_report(),
        "containers": ruleset_rows(state.containers, applied.ruleset if applied else None),
        "counters": [c.__dict__ for c in selected.backend.counters()],
        "warnings": [],
    }


def last_applied() -> Applied | None:
    """What dockwall last applied, which is what its rules in force say; None if unknown."""
    try:
        return load_applied()
    except DockwallError:
        return None


def live_lines(report: dict[str, Any]) -> list[str]:
    """The first lines of a policy-less status: that no policy was given, and what holds."""
    lines = [
        f"[yellow]no policy given[/]: {escape(report['no_policy'])} (give one with -f); "
        "showing what is live."
    ]
    rules = f"backend: [bold]{report['backend']}[/] ({escape(report['reason'])}); "
    if not report["rules_in_force"]:
        lines.append(
            rules + "no dockwall rules in force: Docker's defaults apply (every published "
            "port is open to every address, containers may connect anywhere)"
        )
    elif report["applied_ruleset_known"]:
        lines.append(rules + "dockwall's rules are in force (as last applied)")
    else:
        lines.append(
            rules + "dockwall's rules are in force, but what was applied is not recorded "
            "here: read the rule counters, or ask dockwall explain"
        )
    return lines


def print_report(report: dict[str, Any]) -> None:
    if report["policy"] is None:
        for line in live_lines(report):
            console.print(line)
    else:
        warn(report["warnings"])
        console.print(
            f"backend: [bold]{report['backend']}[/] ({escape(report['reason'])}); "
            + (
                "[green]in sync with the policy[/]"
                if report["in_sync"]
                else "[yellow]changes pending: run dockwall plan[/]"
            )
        )
    table = Table("container", "entry", "networks", "published", "ingress", "egress")
    for row in report["containers"]:
        nets = "\n".join(
            f"{n['network']} ({n['interface']}) {' '.join(n['addresses'])}" for n in row["networks"]
        )
        table.add_row(
            escape(row["name"]),
            escape(row["entry"]),
            escape(nets),
            "\n".join(row["published"]),
            escape(row["ingress"]),
            escape(row["egress"]),
        )
    console.print(table)
    console.print(agent_line(report["agent"]))
    if not report["counters"]:
        console.print("rule counters: none (no dockwall rules in force)")
        return
    rules = Table("family", "chain", "rule", "packets", "bytes", title="rule counters")
    for c in report["counters"]:
        rules.add_row(
            c["family"], escape(c["where"]), escape(c["text"]), str(c["packets"]), str(c["bytes"])
        )
    console.print(rules)
