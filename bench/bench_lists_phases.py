"""Where the time of `dockwall apply` / `plan` goes with a big named list, iptables backend.

One lab; the phases of the command timed one by one in a process inside the lab's
namespace (what `dockwall apply` does, step by step through the same functions), beside
the physical floor (`ipset restore` of the same elements, of the same difference) and
the fixed cost of any dockwall process (interpreter start, `import dockwall.cli`).
Scenarios: the first load of the list, `plan` with everything in sync, a rule-only
change (the list set must stay untouched), and an update of 1% of the list.

    .venv/bin/python bench/bench_lists_phases.py [ENTRIES]     (as root)
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ENTRIES = 1_000_000
POLICY = """\
version: 1
lists:
  big: {file: big.txt}
containers:
  - name: web
    ingress:
      - {from: [any], except: [list:big], port: PORT/tcp}
"""
PHASES = ("policy + list file", "Docker + interfaces", "compile", "plan", "state", "load")


def address(i: int) -> str:
    return f"{10 + (i >> 24)}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def timed(work: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    found = work()
    return time.perf_counter() - started, found


def inside(policy: str, load: bool) -> dict[str, float]:
    """In the lab: each phase of `dockwall apply` (or of `plan`, without `load`)."""
    from dockwall import statefile  # noqa: PLC0415 - timed apart from the interpreter start
    from dockwall.compile.compiler import compile_policy  # noqa: PLC0415
    from dockwall.engine import Engine, read_host_state, with_interfaces  # noqa: PLC0415
    from dockwall.policy import read_policy  # noqa: PLC0415
    from dockwall.runner import SubprocessRunner  # noqa: PLC0415

    runner = SubprocessRunner()
    engine = Engine(runner, "iptables")
    found: dict[str, float] = {}
    found[PHASES[0]], loaded = timed(lambda: read_policy(Path(policy)))
    found[PHASES[1]], state = timed(lambda: with_interfaces(read_host_state(), runner))
    found[PHASES[2]], compiled = timed(lambda: compile_policy(loaded.policy, state))
    ruleset = compiled.ruleset
    selected = engine.selected()
    found[PHASES[3]], plans = timed(lambda: engine.plan_with(selected, ruleset))
    found["changes"] = float(sum(len(p.changes) for p in plans))
    if load:
        found[PHASES[4]], _ = timed(lambda: statefile.save_pending("iptables", ruleset))
        found[PHASES[5]], _ = timed(lambda: engine.load(selected, plans))
        spent, _ = timed(statefile.commit_pending)
        found[PHASES[4]] += spent
    return found


def write_policy(work: Path, port: int) -> str:
    path = work / f"policy-{port}.yaml"
    path.write_text(POLICY.replace("PORT", str(port)))
    return str(path)


def measure(entries: int) -> str:
    from dockwall.lab.lab import Lab  # noqa: PLC0415

    lab = Lab(os.environ.get("DOCKWALL_LAB_PREFIX", "l") + secrets.token_hex(3))
    work = Path(tempfile.mkdtemp(prefix="dockwall-bench-phases-"))
    members = [address(i) for i in range(entries)]
    gone = members[: entries // 200]
    new = [address(entries + i) for i in range(entries // 100 - len(gone))]
    lab.up()
    try:
        host = lab.host
        me = [sys.executable, str(Path(__file__).resolve()), "--inside"]

        def phases(policy: str, load: bool = True) -> dict[str, float]:
            out = host.run([*me, policy, "load" if load else "plan"], timeout=1800).stdout
            return dict(json.loads(out.splitlines()[-1]))

        def wall(argv: list[str], text: str | None = None) -> float:
            return timed(lambda: host.run(argv, input=text, timeout=1800))[0]

        fixed = {
            "interpreter start": wall([sys.executable, "-c", "pass"]),
            "import dockwall.cli": wall([sys.executable, "-c", "import dockwall.cli"]),
        }
        (work / "big.txt").write_text("\n".join(members) + "\n")
        rows = {"first load": phases(write_policy(work, 8080))}
        rows["plan in sync"] = phases(write_policy(work, 8080), load=False)
        rows["rule-only change"] = phases(write_policy(work, 8081))
        (work / "big.txt").write_text("\n".join([*members[len(gone) :], *new]) + "\n")
        rows["1% update"] = phases(write_policy(work, 8081))
        host.run([sys.executable, "-m", "dockwall", "reset", "--backend", "iptables"])
        size = 1 << (2 * entries).bit_length()
        floor_load = f"create floor hash:net family inet maxelem {size}\n"
        floor_load += "".join(f"add floor {m}\n" for m in members)
        update = "".join(f"del floor {m}\n" for m in gone) + "".join(
            f"add floor {m}\n" for m in new
        )
        floors = {"first load": wall(["ipset", "restore"], floor_load)}
        floors["1% update"] = wall(["ipset", "restore"], update)
        host.run(["ipset", "destroy", "floor"])
    finally:
        lab.down()
    return report(entries, fixed, rows, floors)


def report(
    entries: int,
    fixed: dict[str, float],
    rows: dict[str, dict[str, float]],
    floors: dict[str, float],
) -> str:
    head = "| scenario | " + " | ".join(PHASES) + " | sum | floor (ipset restore) | changes |\n"
    head += "|---" * (len(PHASES) + 4) + "|\n"
    lines = []
    for name, found in rows.items():
        spent = [found.get(p) for p in PHASES]
        total = sum(s for s in spent if s is not None)
        cells = " | ".join("-" if s is None else f"{s:.2f} s" for s in spent)
        floor = f"{floors[name]:.2f} s" if name in floors else "-"
        lines.append(f"| {name} | {cells} | {total:.2f} s | {floor} | {int(found['changes'])} |\n")
    fixed_text = ", ".join(f"{k} {v:.2f} s" for k, v in fixed.items())
    return (
        f"{entries:,} entries. Fixed cost of every dockwall process (wall clock, in the lab): "
        f"{fixed_text}. Load average at the end: {Path('/proc/loadavg').read_text().strip()}.\n\n"
        + head
        + "".join(lines)
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inside"]:
        print(json.dumps(inside(sys.argv[2], sys.argv[3] == "load")))
    else:
        sys.stdout.write(measure(int(sys.argv[1]) if len(sys.argv) > 1 else ENTRIES))
