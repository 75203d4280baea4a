"""`init`, `plan`, `apply` and `reset`: the declarative loop, Terraform-style."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dockwall.backends.base import Plan
from dockwall.commands.guard import FORCE_HELP, refuse_against_agent
from dockwall.commands.options import (
    DEFAULT,
    BackendOption,
    JsonOption,
    MaxBytesOption,
    NoWaitOption,
    PolicyOption,
)
from dockwall.commands.report import console, counts, err, plan_json, print_plan, warn
from dockwall.commands.starter import starter_policy
from dockwall.conntrack import Flow, cut_refused
from dockwall.engine import Inputs, default_engine, read_host_state, read_inputs
from dockwall.errors import DockwallError
from dockwall.locking import firewall_lock
from dockwall.statefile import records_distrusted

EXIT_PENDING = 2
EXIT_HELD = 5


def plan(
    policy: PolicyOption = DEFAULT,
    backend: BackendOption = None,
    as_json: JsonOption = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 when the live firewall matches, 2 when changes are pending, 1 on error.",
        ),
    ] = False,
    max_policy_bytes: MaxBytesOption = None,
    verify_lists: Annotated[
        bool,
        typer.Option(
            "--verify-lists",
            help="Read every element of the named lists' kernel sets and compare them one "
            "by one (seconds for a million entries). Without it a list set counts as in "
            "sync when it is declared as wanted and the list file's digest is the one "
            "last applied: an element edited into dockwall's sets by hand goes unseen.",
        ),
    ] = False,
) -> None:
    """Show what `apply` would change, as a diff against the LIVE firewall.

    Reads the policy and Docker's state, compiles the rules and compares them with what
    the kernel has now. Nothing is changed.
    """
    inputs = read_inputs(policy, max_policy_bytes)
    engine = default_engine(backend)
    with records_distrusted() if verify_lists else contextlib.nullcontext():
        selected, plans = engine.plan(inputs)
    if as_json:
        typer.echo(
            plan_json(
                plans,
                inputs.warnings,
                {"backend": selected.backend.name, "reason": selected.reason},
            )
        )
    else:
        warn(inputs.warnings)
        console.print(f"backend: {selected.backend.name} ({selected.reason})")
        print_plan(plans)
    if detailed_exitcode and not all(p.in_sync for p in plans):
        raise typer.Exit(EXIT_PENDING)


def say(message: str) -> None:
    err.print(escape(message), highlight=False)


def apply(
    policy: PolicyOption = DEFAULT,
    backend: BackendOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; change nothing.")] = False,
    boot: Annotated[
        bool,
        typer.Option(
            "--boot",
            help="Restore the last applied rules without Docker or the policy file (run "
            "before docker.service at boot; see dockwall-boot.service).",
        ),
    ] = False,
    cut_existing: Annotated[
        bool,
        typer.Option(
            "--cut-existing",
            help="Also end established connections the new rules would refuse (conntrack -D). "
            "Without it, tightening a rule only affects new connections.",
        ),
    ] = False,
    as_json: JsonOption = False,
    no_wait: NoWaitOption = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    max_policy_bytes: MaxBytesOption = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help=f"Exit {EXIT_HELD} when a container could not be resolved as written (held "
            "closed, or a bad label ignored). Everything else is applied either way.",
        ),
    ] = False,
) -> None:
    """Make the live firewall match the policy, atomically (one transaction per family).

    Existing connections survive: rules act on new connections, and replies always pass.
    The applied rules are remembered for `apply --boot`. One command at a time changes
    the firewall: a second one waits for the lock (or fails with --no-wait); SIGTERM and
    SIGINT wait until the transaction is complete.

    Exit codes: 0 applied; 1 error, nothing changed; 3 the rules are in force but the
    state for `apply --boot` could not be saved; 4 the lock is held (--no-wait);
    5 with --strict, a container could not be resolved as written.

    A container that cannot be resolved never blocks the others: it is held closed (or
    its bad label ignored) with a warning.
    """
    engine = default_engine(backend)
    if boot:
        with firewall_lock("dockwall apply --boot", wait=not no_wait, say=say):
            booted = engine.boot()
        added, _ = counts(booted.plans)
        note = booted.note[0].upper() + booted.note[1:]
        console.print(f"{note} (with {booted.selected.backend.name}): {added} added.")
        return
    inputs = read_inputs(policy, max_policy_bytes)
    if dry_run:
        selected, plans = engine.plan(inputs)
        report_apply(inputs, selected.backend.name, plans, None, as_json=as_json, applied=False)
        raise typer.Exit(EXIT_HELD if strict and inputs.compiled.held else 0)
    refuse_against_agent("apply", policy, force=force)
    with firewall_lock("dockwall apply", wait=not no_wait, say=say):
        selected, plans = engine.plan(inputs)
        engine.apply(selected, plans, inputs.compiled.ruleset, inputs.list_lines)
    cut = cut_refused(engine.runner, inputs.compiled.ruleset) if cut_existing else None
    report_apply(inputs, selected.backend.name, plans, cut, as_json=as_json, applied=True)
    raise typer.Exit(EXIT_HELD if strict and inputs.compiled.held else 0)


def report_apply(
    inputs: Inputs,
    backend: str,
    plans: list[Plan],
    cut: list[Flow] | None,
    *,
    as_json: bool,
    applied: bool,
) -> None:
    if as_json:
        typer.echo(plan_json(plans, inputs.warnings, {"backend": backend, "applied": applied}))
        return
    warn(inputs.warnings)
    if not applied:
        print_plan(plans)
        return
    added, removed = counts(plans)
    guarded = len(inputs.compiled.ruleset.guards)
    console.print(
        f"Applied with {backend}: {added} added, {removed} removed; "
        f"{guarded} container(s) under explicit rules, the rest under the defaults."
    )
    if cut is not None:
        console.print(f"Cut {len(cut)} tracked connection(s) the new rules refuse:")
        for flow in cut:
            console.print(f"  {flow}", highlight=False, soft_wrap=True)


def reset(
    backend: BackendOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed.")] = False,
    no_wait: NoWaitOption = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Remove everything dockwall added to the firewall, and nothing else.

    Docker's own chains and other tools' rules are left as they are; Docker's default
    behaviour returns at once. Refused while the agent runs (it would put its rules
    back), unless --force. Exit codes: 0 done; 1 error; 4 the lock is held (--no-wait).
    """
    engine = default_engine(backend)
    if dry_run:
        print_plan(engine.reset_plans())
        return
    refuse_against_agent("reset", None, force=force)
    with firewall_lock("dockwall reset", wait=not no_wait, say=say):
        plans = engine.reset()
    console.print(f"Reset: {counts(plans)[1]} rule(s), chain(s) and set(s) removed.")


def init(
    policy: PolicyOption = DEFAULT,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starter policy from the running containers (`-f -` prints it).

    Every published port stays open to everyone and egress stays allowed, exactly as
    Docker behaves today: start explicit, then tighten.
    """
    text = starter_policy(read_host_state())
    if str(policy) == "-":
        sys.stdout.write(text)
        return
    if policy.exists() and not force:
        raise DockwallError(f"{policy} exists; use --force to overwrite it")
    policy.parent.mkdir(parents=True, exist_ok=True)
    Path(policy).write_text(text)
    console.print(f"wrote {policy}; review it, then run: dockwall plan -f {policy}")
