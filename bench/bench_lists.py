"""Named lists at scale (issue 16): `dockwall apply` of a 1,000,000-entry list against
the physical floor (the same elements loaded straight with `nft -f` / `ipset restore`),
an in-place update of 1% of the list against the floor for that difference, and `plan`
with the list in sync. One lab, both backends, one run: compare rows of one table.

    .venv/bin/python bench/bench_lists.py [ENTRIES]     (as root)

`run()` returns the table as markdown, for `python -m bench`.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dockwall.lab.lab import Lab

ENTRIES = 1_000_000
POLICY = """\
version: 1
lists:
  big: {file: big.txt}
containers:
  - name: web
    ingress:
      - {from: [any], except: [list:big], port: 8080/tcp}
"""


@dataclass(frozen=True)
class Row:
    backend: str
    entries: int
    apply_s: float
    floor_s: float
    update_s: float
    update_floor_s: float
    plan_s: float


def address(i: int) -> str:
    return f"{10 + (i >> 24)}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def timed(lab: Lab, argv: list[str], text: str | None = None) -> float:
    started = time.perf_counter()
    lab.host.run(argv, input=text, timeout=1800)
    return time.perf_counter() - started


def dockwall(lab: Lab, backend: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "dockwall", args[0], "--backend", backend, *args[1:]]


def floors(
    lab: Lab, backend: str, members: list[str], gone: list[str], new: list[str]
) -> tuple[float, float]:
    """The same elements into a scratch set, then the same difference: the kernel's cost."""
    if backend == "nftables":
        load = "add table inet benchfloor\nadd set inet benchfloor s { type ipv4_addr; }\n"
        load += "add element inet benchfloor s { " + ", ".join(members) + " }\n"
        update = "delete element inet benchfloor s { " + ", ".join(gone) + " }\n"
        update += "add element inet benchfloor s { " + ", ".join(new) + " }\n"
        first = timed(lab, ["nft", "-f", "-"], load)
        second = timed(lab, ["nft", "-f", "-"], update)
        lab.host.run(["nft", "delete", "table", "inet", "benchfloor"])
        return first, second
    size = max(65536, 1 << (2 * len(members)).bit_length())
    load = f"create benchfloor hash:net family inet maxelem {size}\n"
    load += "".join(f"add benchfloor {m}\n" for m in members)
    update = "".join(f"del benchfloor {m}\n" for m in gone)
    update += "".join(f"add benchfloor {m}\n" for m in new)
    first = timed(lab, ["ipset", "restore"], load)
    second = timed(lab, ["ipset", "restore"], update)
    lab.host.run(["ipset", "destroy", "benchfloor"])
    return first, second


def measure(lab: Lab, backend: str, entries: int) -> Row:
    work = Path(tempfile.mkdtemp(prefix="dockwall-bench-lists-"))
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    members = [address(i) for i in range(entries)]
    listed = work / "big.txt"
    listed.write_text("\n".join(members) + "\n")
    apply_s = timed(lab, dockwall(lab, backend, "apply", "-f", str(policy)))
    changed = entries // 100
    gone = members[: changed // 2]
    new = [address(entries + i) for i in range(changed - len(gone))]
    listed.write_text("\n".join([*members[len(gone) :], *new]) + "\n")
    update_s = timed(lab, dockwall(lab, backend, "apply", "-f", str(policy)))
    plan_s = timed(lab, dockwall(lab, backend, "plan", "--detailed-exitcode", "-f", str(policy)))
    lab.host.run(dockwall(lab, backend, "reset"))
    floor_s, update_floor_s = floors(lab, backend, members, gone, new)
    return Row(backend, entries, apply_s, floor_s, update_s, update_floor_s, plan_s)


def table(rows: list[Row]) -> str:
    head = (
        "| backend | entries | dockwall apply | floor (load) | ratio | 1% update | floor "
        "(update) | ratio | plan in sync |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r.backend} | {r.entries:,} | {r.apply_s:.2f} s | {r.floor_s:.2f} s | "
        f"{r.apply_s / r.floor_s:.1f}x | {r.update_s:.2f} s | {r.update_floor_s:.2f} s | "
        f"{r.update_s / r.update_floor_s:.1f}x | {r.plan_s:.2f} s |\n"
        for r in rows
    )


def run(entries: int = ENTRIES) -> str:
    lab = Lab("lb" + secrets.token_hex(3))
    lab.up()
    try:
        rows = [measure(lab, backend, entries) for backend in ("iptables", "nftables")]
    finally:
        lab.down()
    return (
        "Reproduce: `.venv/bin/python bench/bench_lists.py` (as root). Each `dockwall` "
        "figure is the whole command (a fresh process: policy, list file, Docker, plan, "
        "load); the floor loads the same elements into a scratch set directly.\n\n" + table(rows)
    )


if __name__ == "__main__":
    sys.stdout.write(run(int(sys.argv[1]) if len(sys.argv) > 1 else ENTRIES))
