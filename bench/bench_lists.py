"""Named lists at scale (issue 16): `dockwall apply` of a 1,000,000-entry list against
the physical floor (the same elements loaded straight with `nft -f` / `ipset restore`),
an in-place update of 1% of the list against the floor for that difference, a
rule-only apply with the list present, `plan` with the list in sync, and the agent
applying an edited list file (no process start). One lab, both backends, one run:
compare rows of one table.

Every `dockwall` figure is the whole command, a fresh process. Its fixed part is
measured on its own: the same policy with an empty list (Python start, imports, the
policy, Docker's state, a table without elements); `over fixed` is what the list adds.

    .venv/bin/python bench/bench_lists.py [ENTRIES [BACKEND...]]     (as root)

`run()` returns the table as markdown, for `python -m bench`.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from dockwall.lab.lab import Lab
from dockwall.policy.listfile import read_list_file
from dockwall.runner import SubprocessRunner

ENTRIES = 1_000_000
UPDATE_ROUNDS = 3
BACKENDS = ("nftables", "iptables")
POLICY = """\
version: 1
lists:
  big: {file: big.txt}
containers:
  - name: web
    ingress:
      - {from: [any], except: [list:big], port: PORT/tcp}
"""
T = TypeVar("T")
RECONCILED = re.compile(r"reconciled \(policy file changed\): \d+ change\(s\) in (\d+) ms")


@dataclass(frozen=True)
class Row:
    backend: str
    entries: int
    fixed_s: float
    parse_s: float
    apply_s: float
    floor_s: float
    update_s: float
    update_floor_s: float
    scattered_s: float
    rule_only_s: float
    plan_s: float
    plan_inputs_s: float
    plan_engine_s: float
    agent_s: float
    agent_reconcile_ms: float


def address(i: int) -> str:
    return f"{10 + (i >> 24)}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def host(lab: Lab) -> SubprocessRunner:
    """The lab host, with Python writing bytecode as an installed dockwall has it (this
    machine's environment sets PYTHONDONTWRITEBYTECODE, which makes every start compile
    every module: seconds that are no part of dockwall)."""
    return replace(lab.host, env={**lab.host.env, "PYTHONDONTWRITEBYTECODE": ""})


def timed(lab: Lab, argv: list[str], text: str | None = None) -> float:
    started = time.perf_counter()
    host(lab).run(argv, input=text, timeout=1800)
    return time.perf_counter() - started


def dockwall(backend: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "dockwall", args[0], "--backend", backend, *args[1:]]


def floors(
    lab: Lab, backend: str, members: list[str], gone: list[str], new: list[str]
) -> tuple[float, float]:
    """The same elements into a scratch set, then the same difference: the kernel's cost."""
    if backend == "nftables":
        load = "add table inet benchfloor\nadd set inet benchfloor s { type ipv4_addr; }\n"
        load += "add element inet benchfloor s { " + ", ".join(members) + " }\n"
        first = timed(lab, ["nft", "-f", "-"], load)
        second = min(
            timed(lab, ["nft", "-f", "-"], nft_update(out, into))
            for out, into in rounds_of(gone, new)
        )
        lab.host.run(["nft", "delete", "table", "inet", "benchfloor"])
        return first, second
    size = max(65536, 1 << (2 * len(members)).bit_length())
    load = f"create benchfloor hash:net family inet maxelem {size}\n"
    load += "".join(f"add benchfloor {m}\n" for m in members)
    first = timed(lab, ["ipset", "restore"], load)
    second = min(
        timed(lab, ["ipset", "restore"], ipset_update(out, into))
        for out, into in rounds_of(gone, new)
    )
    lab.host.run(["ipset", "destroy", "benchfloor"])
    return first, second


def rounds_of(gone: list[str], new: list[str]) -> list[tuple[list[str], list[str]]]:
    """The floor's update, UPDATE_ROUNDS times as dockwall's is: the difference one
    way, then back, alternately (each the same size)."""
    return [(gone, new) if i % 2 == 0 else (new, gone) for i in range(UPDATE_ROUNDS)]


def nft_update(gone: list[str], new: list[str]) -> str:
    update = "delete element inet benchfloor s { " + ", ".join(gone) + " }\n"
    return update + "add element inet benchfloor s { " + ", ".join(new) + " }\n"


def ipset_update(gone: list[str], new: list[str]) -> str:
    update = "".join(f"del benchfloor {m}\n" for m in gone)
    return update + "".join(f"add benchfloor {m}\n" for m in new)


def parse_time(path: Path) -> float:
    """Reading and canonicalizing the list file alone, in this process: input work every
    apply and plan of the list does before anything meets the kernel."""
    started = time.perf_counter()
    read_list_file(path)
    return time.perf_counter() - started


def write_list(path: Path, members: list[str]) -> None:
    path.write_text("\n".join(members) + "\n")


def changed(members: list[str], start: int) -> tuple[list[str], list[str], list[str]]:
    """1% of the list: half of that removed from the front, as many new at the end."""
    count = len(members) // 100
    gone = members[: count // 2]
    new = [address(start + i) for i in range(count - len(gone))]
    return [*members[len(gone) :], *new], gone, new


def scattered(members: list[str], start: int) -> list[str]:
    """1% of the list again, spread through it: half of that removed at random places,
    as many new entries put in at others (the same random places every run)."""
    count = len(members) // 100
    chosen = random.Random(16)
    gone = set(chosen.sample(range(len(members)), count // 2))
    kept = [m for i, m in enumerate(members) if i not in gone]
    spots = set(chosen.sample(range(len(kept)), count - len(gone)))
    out: list[str] = []
    for i, member in enumerate(kept):
        if i in spots:
            out.append(address(start + len(out) - i))
        out.append(member)
    return out


def measure(lab: Lab, backend: str, entries: int) -> Row:
    work = Path(tempfile.mkdtemp(prefix="dockwall-bench-lists-"))
    policy = work / "policy.yaml"
    policy.write_text(POLICY.replace("PORT", "8080"))
    listed = work / "big.txt"
    write_list(listed, [])
    timed(lab, [sys.executable, "-m", "dockwall", "--help"])
    fixed_s = min(timed(lab, dockwall(backend, "apply", "-f", str(policy))) for _ in range(3))
    lab.host.run(dockwall(backend, "reset"))
    members = [address(i) for i in range(entries)]
    write_list(listed, members)
    parse_s = parse_time(listed)
    apply_s = timed(lab, dockwall(backend, "apply", "-f", str(policy)))
    policy.write_text(POLICY.replace("PORT", "8081"))
    rule_only_s = timed(lab, dockwall(backend, "apply", "-f", str(policy)))
    apply_argv = dockwall(backend, "apply", "-f", str(policy))
    updates, spread = [], []
    for round_ in range(UPDATE_ROUNDS):
        members = changed(members, entries + round_ * entries // 100)[0]
        write_list(listed, members)
        updates.append(timed(lab, apply_argv))
    for round_ in range(UPDATE_ROUNDS):
        members = scattered(members, entries * 3 + round_ * entries // 100)
        write_list(listed, members)
        spread.append(timed(lab, apply_argv))
    update_s, scattered_s = min(updates), min(spread)
    plan_argv = dockwall(backend, "plan", "--detailed-exitcode", "-f", str(policy))
    plan_s = min(timed(lab, plan_argv) for _ in range(3))
    plan_inputs_s, plan_engine_s = plan_in_process(lab, backend, policy)
    agent_s, reconcile_ms = agent_edit(lab, backend, work, policy, members, entries * 2)
    lab.host.run(dockwall(backend, "reset"))
    first = [address(i) for i in range(entries)]
    _, gone, new = changed(first, entries)
    floor_s, update_floor_s = floors(lab, backend, first, gone, new)
    return Row(
        backend,
        entries,
        fixed_s,
        parse_s,
        apply_s,
        floor_s,
        update_s,
        update_floor_s,
        scattered_s,
        rule_only_s,
        plan_s,
        plan_inputs_s,
        plan_engine_s,
        agent_s,
        reconcile_ms,
    )


PLAN_CHILD = """
import sys, time
from pathlib import Path
from dockwall.engine import default_engine, read_inputs
started = time.perf_counter()
inputs = read_inputs(Path(sys.argv[1]))
read = time.perf_counter()
selected, plans = default_engine(sys.argv[2]).plan(inputs)
assert all(p.in_sync for p in plans), plans
print(read - started, time.perf_counter() - read)
"""


def plan_in_process(lab: Lab, backend: str, policy: Path) -> tuple[float, float]:
    """`plan` in sync without the process start: (policy, list file and Docker read;
    the engine's plan: live read and comparison), in a child on the lab host."""
    argv = [sys.executable, "-c", PLAN_CHILD, str(policy), backend]
    found = [host(lab).run(argv, timeout=600).stdout.split() for _ in range(3)]
    best = min(found, key=lambda pair: float(pair[0]) + float(pair[1]))
    return float(best[0]), float(best[1])


def agent_edit(
    lab: Lab, backend: str, work: Path, policy: Path, members: list[str], start: int
) -> tuple[float, float]:
    """The agent (started on the applied policy, ready) sees a 1% edit of the list file:
    seconds from the write to its `reconciled` log line (this includes up to one drift
    interval, 1 s, before the change is noticed, and reading the list file again), and
    the reconcile's own milliseconds (compile, plan, load, state)."""
    log_path = work / "agent.log"
    state = lab.names.state_dir / "dockwall-run" / "agent.json"
    argv = dockwall(backend, "agent", "-f", str(policy))
    pid = host(lab).spawn(argv, log_path=str(log_path))
    try:
        wait_for(lambda: agent_ready(state, pid), 300, log_path)
        time.sleep(2.0)
        edited, _, _ = changed(members, start)
        write_list(work / "big.txt", edited)
        written = time.perf_counter()
        found = wait_for(lambda: RECONCILED.search(read(log_path)), 600, log_path)
        elapsed = time.perf_counter() - written
        assert found is not None
        return elapsed, float(found.group(1))
    finally:
        SubprocessRunner().run(["kill", str(pid)], check=False)
        wait_for(lambda: not alive(pid), 60, log_path)


def agent_ready(state: Path, pid: int) -> bool:
    try:
        found = json.loads(state.read_text())
    except (OSError, ValueError):
        return False
    return bool(found.get("pid") == pid and found.get("reconciles"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def wait_for(found: Callable[[], T], bound: float, log_path: Path) -> T:
    """Polls `found` every 20 ms for up to `bound` seconds, until it answers something true."""
    deadline = time.perf_counter() + bound
    while time.perf_counter() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {bound} s; agent log:\n{read(log_path)[-3000:]}")


def table(rows: list[Row]) -> str:
    head = (
        "| backend | entries | fixed (empty list) | list file parse | dockwall apply "
        "| over fixed | floor (load) "
        "| ratio | 1% update | over fixed | floor (update) | ratio | 1% scattered: over fixed "
        "| ratio | rule-only apply | plan in sync "
        "| plan in process: inputs + plan | agent: edit to applied | agent reconcile |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r.backend} | {r.entries:,} | {r.fixed_s:.2f} s | {r.parse_s:.2f} s | "
        f"{r.apply_s:.2f} s | "
        f"{r.apply_s - r.fixed_s:.2f} s | {r.floor_s:.2f} s | "
        f"{(r.apply_s - r.fixed_s) / r.floor_s:.1f}x | {r.update_s:.2f} s | "
        f"{r.update_s - r.fixed_s:.2f} s | {r.update_floor_s:.2f} s | "
        f"{(r.update_s - r.fixed_s) / r.update_floor_s:.1f}x | "
        f"{r.scattered_s - r.fixed_s:.2f} s | "
        f"{(r.scattered_s - r.fixed_s) / r.update_floor_s:.1f}x | {r.rule_only_s:.2f} s | "
        f"{r.plan_s:.2f} s | {r.plan_inputs_s:.2f} s + {r.plan_engine_s:.2f} s | "
        f"{r.agent_s:.2f} s | {r.agent_reconcile_ms:.0f} ms |\n"
        for r in rows
    )


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(entries: int = ENTRIES, backends: tuple[str, ...] = BACKENDS) -> str:
    lab = Lab("nb" + secrets.token_hex(3))
    lab.up()
    before = loadavg()
    rows = []
    try:
        for backend in backends:
            rows.append(measure(lab, backend, entries))
            sys.stderr.write(table(rows[-1:]))
    finally:
        lab.down()
    return (
        f"Reproduce: `.venv/bin/python bench/bench_lists.py {entries}` (as root). Load "
        f"average {before} before, {loadavg()} after. Each `dockwall` figure is the "
        "whole command, a fresh process (with bytecode cached, as installed: this "
        "machine's PYTHONDONTWRITEBYTECODE is emptied for it); `fixed` is the same "
        "command with an empty list file (Python start and imports, policy, Docker, a "
        "table without elements; the best of 3), `over fixed` the rest; ratio = over "
        "fixed / floor. Each 1% update, and the floor's, is the best of 3 too (the "
        "same statistic on both sides of a ratio). `plan in sync` is the best of 3 "
        "commands; `in process` the same "
        "plan in a running Python (reading the policy, list file and Docker, then the "
        "engine's plan: the live read and comparison). "
        "`list file parse` is reading the file alone (in the bench process), part of "
        "every apply and update of a changed file (an unchanged one is hashed and its "
        "contents taken from the state directory). The floor loads the same elements "
        "into a scratch set directly. Rule-only apply: the list present, one rule's port "
        "changed. Agent: a 1% edit of the file under a running `dockwall agent`, from "
        "the write to its log line (up to 1 s of that is the drift check's poll), and "
        "the reconcile it logs.\n\n" + table(rows)
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else ENTRIES
    sys.stdout.write(run(count, tuple(sys.argv[2:]) or BACKENDS))
