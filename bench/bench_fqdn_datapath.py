"""Datapath of egress by name with 10,000 learned addresses (issue 12).

New TCP connections per second from a default-bridge container to an address it may
reach only because the forwarder learned it (`to_fqdn`), with 10,000 learned elements
in the pattern's set, against the same connections with no firewall, in one lab and
one run. Once learned, the agent stops (its rules stay in force), so its own work does
not share the CPU with the datapath; rounds interleave: rules in force, table deleted
(no firewall: Docker's rules only), table put back as nft listed it. The learned elements come
through the forwarder itself: the container resolves 10,000 names (9,999 of them point
into 198.18.0.0/15, never dialled; the last at the lab's 192.0.2.100). Connections use
issue 4's connect loop (bench/datapath), here from the container to a listener in the
lab internet; a connection to an address not learned must fail, proof the policy is in
force. With the iptables backend (`--backend iptables`) the set is an ipset and "no
firewall" is an ACCEPT put first in DOCKER-USER (every new connection then skips
dockwall's chains: Docker's rules only, plus that one rule), taken out again for the
next round with rules in force.

Reproduce: `.venv/bin/python -m bench.bench_fqdn_datapath [--backend iptables]` (as root,
about two minutes).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_dns import agent_rss, loadavg, wait_for_agent
from bench.datapath.labsetup import HERE
from dockwall.backends.iptables import fqdn as ipt_fqdn
from dockwall.backends.nftables import fqdn as nft_fqdn
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.netns import in_ns
from dockwall.lab.probe import Prober
from dockwall.runner import SubprocessRunner

LEARNED = 10_000
PORT = 9443
TARGET = "192.0.2.100"
NOT_LEARNED = "192.0.2.7"
SECONDS = 3.0
ROUNDS = 3
PATTERN = "*.dp.example.test"
FILLER = ipaddress.ip_network("198.18.0.0/15")
POLICY = f"""\
version: 1
containers:
  - name: client
    egress:
      - to_fqdn: ["{PATTERN}"]
        port: {PORT}/tcp
"""


def zone() -> dict[str, object]:
    base = int(FILLER.network_address)
    records = [
        {"name": f"f{i}.dp.example.test", "type": "A",
         "value": str(ipaddress.IPv4Address(base + i + 1)), "ttl": 3600}
        for i in range(LEARNED - 1)
    ]  # fmt: skip
    records.append({"name": "target.dp.example.test", "type": "A", "value": TARGET, "ttl": 3600})
    return {"records": records}


def names() -> list[str]:
    return [*(f"f{i}.dp.example.test" for i in range(LEARNED - 1)), "target.dp.example.test"]


def container_ns(lab: Lab) -> tuple[str, str]:
    """The client container's netns path and its IPv4 address."""
    prober = Prober(lab)
    attrs = prober.container_attrs("client")
    address = str(attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"])  # type: ignore[index]
    return prober.container_netns("client"), address


def connections_per_second(ns: str, source: str, host: str) -> tuple[float, int]:
    argv = [
        sys.executable, str(HERE / "connect_loop.py"), host, str(PORT), source, str(SECONDS),
    ]  # fmt: skip
    counts = json.loads(SubprocessRunner(netns=ns).run(argv, timeout=SECONDS + 60).stdout)
    return counts["opened"] / counts["seconds"], int(counts["failed"])


def blocked(ns: str, source: str) -> bool:
    """Whether a connection to an address nobody learned fails."""
    argv = [sys.executable, str(HERE / "connect_loop.py"), NOT_LEARNED, str(PORT), source, "0.5"]
    counts = json.loads(SubprocessRunner(netns=ns).run(argv, timeout=60).stdout)
    return int(counts["opened"]) == 0


def learn(lab: Lab, ns: str) -> dict[str, object]:
    job = {"server": t.DNS_V4, "names": names(), "parallel": 64}
    result = SubprocessRunner(netns=ns).run(
        [sys.executable, "-m", "bench.dns_load"], input=json.dumps(job), timeout=600
    )
    found: dict[str, object] = json.loads(result.stdout)
    return found


def set_size(lab: Lab, backend: str) -> int:
    if backend == "iptables":
        header = lab.host.run(["ipset", "list", "-t", ipt_fqdn.set_name(PATTERN, "ipv4")]).stdout
        return int(header.split("Number of entries:")[1].split()[0])
    name = nft_fqdn.set_name(PATTERN, 4)
    argv = ["nft", "-j", "list", "set", "inet", "dockwall", name]
    listing = json.loads(lab.host.run(argv).stdout)
    sets = [item["set"] for item in listing["nftables"] if "set" in item]
    return len(sets[0].get("elem", [])) if sets else 0


def start_servers(lab: Lab) -> int:
    argv = [sys.executable, str(HERE / "accept_loop.py"), str(PORT), "900"]
    log = str(lab.names.state_dir / "bench-fqdn-servers.log")
    pid = in_ns(lab.names.inet_ns).spawn(argv, log_path=log)
    for _ in range(100):
        if f":{PORT} " in in_ns(lab.names.inet_ns).run(["ss", "-ltnH"]).stdout:
            return pid
        time.sleep(0.1)
    raise RuntimeError("listener did not start")


def learned_table(lab: Lab, ns: str, backend: str) -> tuple[str, dict[str, object]]:
    """The agent learns 10,000 addresses through the forwarder, then stops (its rules
    stay in force); returns the table as nft lists it, to put back between rounds (none
    for iptables), and what the learning cost."""
    workdir = Path(tempfile.mkdtemp())
    (workdir / "policy.yaml").write_text(POLICY)
    argv = [sys.executable, "-m", "dockwall", "agent", "-f", str(workdir / "policy.yaml"),
            "--backend", backend]  # fmt: skip
    pid = lab.host.spawn(argv, log_path=str(workdir / "agent.log"))
    try:
        wait_for_agent(lab)
        started = time.monotonic()
        lookups = learn(lab, ns)
        spent = time.monotonic() - started
        rss = agent_rss(pid)
    finally:
        os.kill(pid, signal.SIGTERM)
    time.sleep(1)
    if backend == "iptables":
        return "", {**lookups, "learn_seconds": spent, "rss": rss, "list_seconds": None}
    started = time.monotonic()
    lab.host.run(["nft", "-j", "list", "table", "inet", "dockwall"])
    listing = time.monotonic() - started
    saved = lab.host.run(["nft", "list", "table", "inet", "dockwall"]).stdout
    return saved, {**lookups, "learn_seconds": spent, "rss": rss, "list_seconds": listing}


BYPASS = ["DOCKER-USER", "1", "-j", "ACCEPT"]


def firewall_off(lab: Lab, backend: str) -> None:
    if backend == "iptables":
        lab.host.run(["iptables", "-I", *BYPASS])
    else:
        lab.host.run(["nft", "delete", "table", "inet", "dockwall"])


def firewall_on(lab: Lab, backend: str, saved: str) -> None:
    if backend == "iptables":
        lab.host.run(["iptables", "-D", BYPASS[0], *BYPASS[2:]])
    else:
        lab.host.run(["nft", "-f", "-"], input=saved, timeout=120)


def measure(lab: Lab, backend: str) -> str:
    lab.names.zone_file.write_text(json.dumps(zone()))
    with lab.client() as client:
        client.containers.run(t.IMAGE, ["sleep", "2147483647"], name="client", detach=True)
    ns, source = container_ns(lab)
    server = start_servers(lab)
    none: list[float] = []
    learned: list[float] = []
    failed = {"none": 0, "learned": 0}
    enforced = True
    try:
        before = loadavg()
        saved, cost = learned_table(lab, ns, backend)
        elements = set_size(lab, backend)
        for _ in range(ROUNDS):
            rate, lost = connections_per_second(ns, source, TARGET)
            learned.append(rate)
            failed["learned"] += lost
            enforced = enforced and blocked(ns, source)
            firewall_off(lab, backend)
            rate, lost = connections_per_second(ns, source, TARGET)
            none.append(rate)
            failed["none"] += lost
            firewall_on(lab, backend, saved)
        after = loadavg()
        lab.host.run([sys.executable, "-m", "dockwall", "reset", "--backend", backend])
    finally:
        os.kill(server, signal.SIGTERM)
    base, fw = statistics.median(none), statistics.median(learned)
    off = "ACCEPT first in DOCKER-USER" if backend == "iptables" else "table deleted"
    kind = "ipset" if backend == "iptables" else "set"
    listed = (
        ""
        if cost["list_seconds"] is None
        else f"`nft -j list table` of the learned table (what the agent's drift check reads "
        f"every second) took {cost['list_seconds']:.2f} s. "
    )
    return "\n".join(
        [
            __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "",
            "",
            f"| setup (median of {ROUNDS} interleaved rounds of {SECONDS:g} s) | "
            "new TCP conn/s | vs none | failed |",
            "| --- | ---: | ---: | ---: |",
            f"| no firewall ({off}) | {base:,.0f} | 100% | {failed['none']} |",
            f"| {backend}, {elements:,} learned addresses in the {kind} | {fw:,.0f} | "
            f"{fw / base:.0%} | {failed['learned']} |",
            "",
            f"Learning: {cost['answered']:,} lookups through the forwarder in "
            f"{cost['learn_seconds']:.1f} s ({cost['failed']} failed), 64 in flight, each a "
            f"new address; agent RSS after: {cost['rss']} MB. {listed}"
            f"A connection to {NOT_LEARNED} (not learned) "
            f"{'failed in every round, as it must' if enforced else 'SUCCEEDED: not in force'}."
            f" Load average before: {before}, after: {after}.",
            "",
            f"Reproduce: `.venv/bin/python -m bench.bench_fqdn_datapath --backend {backend}` "
            "(as root).",
        ]
    )


def run(backend: str) -> str:
    lab = Lab("dfd" + secrets.token_hex(3))
    try:
        lab.up(samples=False)
        return measure(lab, backend)
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--backend", choices=("nftables", "iptables"), default="nftables")
    print(run(parser.parse_args().backend))


if __name__ == "__main__":
    main()
