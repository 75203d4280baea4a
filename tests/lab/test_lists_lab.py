"""Named lists, `except:` and `deny_with: reject` with real packets, on both backends and
both families: the carved-out addresses are refused and the rest allowed, a reject is a
reset or an ICMP error (a drop a timeout), and a 200,000-entry list changes in place."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from dockwall.lab import processes
from dockwall.lab.lab import Lab, read_pid
from dockwall.lab.probe import Probe, Prober
from dockwall.runner import netns_path

from .agent_helpers import EVENT_BOUND, Agents, LabCli, wait_until
from .dockwall_cli import Dockwall, Held
from .test_boot import WIPE

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

FEEDS = "# a feed\n198.51.100.7\n2001:db8:200::7\n"
CARVED = """\
version: 1
lists:
  feeds: {file: feeds.txt}
containers:
  - name: web
    ingress:
      - from: [any]
        except: [list:feeds, 192.0.2.0/28, "2001:db8:203::20/128"]
        port: 8080/tcp
    egress:
      - to: [any]
        except: [list:feeds, 203.0.113.16/28, "2001:db8:203::20/128"]
        port: 443/tcp
"""


def inet_outcomes(lab: Lab, prober: Prober, probes: list[tuple[str, str]]) -> dict[str, str]:
    """(source, host port) probes from the lab internet, in one batch."""
    batch = []
    for src, port in probes:
        dst = "198.51.100.2" if ":" not in src else "2001:db8:ffff::2"
        number, proto = port.split("/")
        batch.append(Probe(dst, int(number), proto, src))  # type: ignore[arg-type]
    found = prober.outcomes(netns_path(lab.names.inet_ns), batch)
    return {f"{src}>{port}": outcome for (src, port), outcome in zip(probes, found, strict=True)}


def egress_outcomes(prober: Prober, container: str, targets: list[str]) -> dict[str, str]:
    ns = prober.container_netns(container)
    batch = [prober.destination(target, 6 if "[" in target else 4) for target in targets]
    return dict(zip(targets, prober.outcomes(ns, batch), strict=True))


def test_except_carves_cidrs_and_lists_out_of_from_and_to(
    lab: Lab, dockwall: Dockwall, prober: Prober
) -> None:
    (dockwall.workdir / "feeds.txt").write_text(FEEDS)
    dockwall.apply(CARVED)
    quick = Prober(lab, timeout=2)
    ingress = inet_outcomes(
        lab,
        quick,
        [
            ("192.0.2.100", "8080/tcp"),
            ("203.0.113.20", "8080/tcp"),
            ("198.51.100.7", "8080/tcp"),
            ("192.0.2.7", "8080/tcp"),
            ("2001:db8:100::100", "8080/tcp"),
            ("2001:db8:200::7", "8080/tcp"),
            ("2001:db8:203::20", "8080/tcp"),
        ],
    )
    assert [k for k, v in ingress.items() if v == "open"] == [
        "192.0.2.100>8080/tcp",
        "203.0.113.20>8080/tcp",
        "2001:db8:100::100>8080/tcp",
    ], ingress
    egress = egress_outcomes(
        quick,
        "web",
        [
            "203.0.113.10:443/tcp",
            "198.51.100.7:443/tcp",
            "203.0.113.20:443/tcp",
            "[2001:db8:203::10]:443/tcp",
            "[2001:db8:200::7]:443/tcp",
            "[2001:db8:203::20]:443/tcp",
        ],
    )
    assert [k for k, v in egress.items() if v == "open"] == [
        "203.0.113.10:443/tcp",
        "[2001:db8:203::10]:443/tcp",
    ], egress
    status = json.loads(dockwall.run("status", "-f", str(dockwall.policy(CARVED)), "--json").stdout)
    (feeds,) = status["lists"]
    assert (feeds["name"], feeds["entries"], feeds["ipv4"], feeds["ipv6"]) == ("feeds", 2, 1, 1)
    assert feeds["file"].endswith("feeds.txt") and feeds["last_load"] is not None
    assert feeds["used_by"] == ["name=web ingress[0] except", "name=web egress[0] except"]


REJECTING = """\
version: 1
defaults: {deny_with: reject}
containers:
  - name: web
    ingress:
      - {from: [192.0.2.100, "2001:db8:100::100"], port: 8080/tcp}
    egress: deny
  - name: db
    deny_with: drop
    ingress:
      - {from: [192.0.2.100, "2001:db8:100::100"], port: 5432/tcp}
"""


def test_reject_refuses_at_once_and_drop_times_out(
    lab: Lab, dockwall: Dockwall, prober: Prober
) -> None:
    dockwall.apply(REJECTING)
    quick = Prober(lab, timeout=3)
    started = time.monotonic()
    found = inet_outcomes(
        lab,
        quick,
        [
            ("198.51.100.7", "8080/tcp"),
            ("198.51.100.7", "8053/udp"),
            ("2001:db8:200::7", "8080/tcp"),
            ("2001:db8:200::7", "8053/udp"),
            ("198.51.100.7", "5432/tcp"),
            ("2001:db8:200::7", "5432/tcp"),
            ("192.0.2.100", "8080/tcp"),
        ],
    )
    assert found == {
        "198.51.100.7>8080/tcp": "refused",
        "198.51.100.7>8053/udp": "unreachable",
        "2001:db8:200::7>8080/tcp": "refused",
        "2001:db8:200::7>8053/udp": "unreachable",
        "198.51.100.7>5432/tcp": "timeout",
        "2001:db8:200::7>5432/tcp": "timeout",
        "192.0.2.100>8080/tcp": "open",
    }
    assert time.monotonic() - started < 30
    egress = egress_outcomes(quick, "web", ["203.0.113.10:443/tcp", "[2001:db8:203::10]:443/tcp"])
    assert set(egress.values()) == {"refused"}, egress
    explained = {
        (source, target): json.loads(
            dockwall.run("explain", "--from", source, "--to", target, "--json", check=False).stdout
        )["connection"]
        for source, target in [
            ("198.51.100.7", "host:8080/tcp"),
            ("2001:db8:200::7", "host:8080/tcp"),
            ("198.51.100.7", "host:5432/tcp"),
        ]
    }
    assert list(explained.values()) == ["rejected", "rejected", "dropped"], explained


BIG = """\
version: 1
lists:
  big: {file: big.txt}
containers:
  - name: web
    ingress:
      - {from: [any], except: [list:big], port: 8080/tcp}
  - name: db
    ingress:
      - {from: [192.0.2.0/24, "2001:db8:100::/64"], port: 5432/tcp}
"""


def big_list(path: Path, extra: list[str]) -> None:
    """200,000 addresses of 10.0.0.0/8 and 2001:db8:f00::/48, plus `extra`."""
    lines = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, 150_001)]
    lines += [f"2001:db8:f00::{i:x}" for i in range(1, 50_001)]
    path.write_text("\n".join([*lines, *extra]) + "\n")


def db_counter(lab: Lab, backend: str) -> int:
    """Packets the db's allow rule for 192.0.2.0/24 has counted."""
    if backend == "nftables":
        text = lab.host.run(["nft", "list", "table", "inet", "dockwall"]).stdout
        match = re.search(r"ip saddr 192\.0\.2\.0/24 .*counter packets (\d+)", text)
    else:
        text = lab.host.run(["iptables-save", "-c", "-t", "filter"]).stdout
        match = re.search(r"\[(\d+):\d+\] -A DOCKWALL-I-\S+ -s 192\.0\.2\.0/24 ", text)
    assert match is not None, text[-3000:]
    return int(match.group(1))


def test_a_200000_entry_list_changes_in_place(lab: Lab, dockwall: Dockwall, prober: Prober) -> None:
    listed = dockwall.workdir / "big.txt"
    big_list(listed, ["198.51.100.7", "2001:db8:200::7"])
    dockwall.apply(BIG)
    quick = Prober(lab, timeout=2)
    probes = [
        ("198.51.100.7", "8080/tcp"),
        ("2001:db8:200::7", "8080/tcp"),
        ("203.0.113.20", "8080/tcp"),
        ("2001:db8:203::20", "8080/tcp"),
        ("192.0.2.100", "5432/tcp"),
    ]
    assert list(inet_outcomes(lab, quick, probes).values()) == [
        "timeout",
        "timeout",
        "open",
        "open",
        "open",
    ]
    counted = db_counter(lab, dockwall.backend)
    assert counted >= 1
    with Held(lab, "203.0.113.20", "198.51.100.2", 8080) as held:
        big_list(listed, ["203.0.113.20", "2001:db8:203::20"])
        plan = dockwall.run("plan", "-f", str(dockwall.policy(BIG))).stdout
        assert re.search(r"list big: \+1 -1", plan), plan
        assert "chain" not in plan.replace("chains", ""), plan
        dockwall.apply(BIG)
        assert held.echo("still there"), "the established connection survives"
    assert list(inet_outcomes(lab, quick, probes).values()) == [
        "open",
        "open",
        "timeout",
        "timeout",
        "open",
    ]
    assert db_counter(lab, dockwall.backend) > counted, "the other rules were not rebuilt"


def test_bad_list_lines(dockwall: Dockwall) -> None:
    (dockwall.workdir / "feeds.txt").write_text("198.51.100.7\n198.51.100.300\n")
    before = dockwall.firewall()
    failed = dockwall.run("apply", "-f", str(dockwall.policy(CARVED)), check=False)
    assert failed.returncode == 2, failed
    assert "feeds.txt:2: '198.51.100.300' is not an IP address" in failed.stderr
    assert dockwall.firewall() == before
    skipping = CARVED.replace("{file: feeds.txt}", "{file: feeds.txt, on_error: skip}")
    applied = dockwall.apply(skipping)
    assert "feeds.txt:2" in applied.stderr + applied.stdout
    assert dockwall.firewall() != before


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_the_agent_applies_a_changed_list_file(
    lab: Lab, cli: LabCli, agents: Agents, backend: str
) -> None:
    (cli.workdir / "feeds.txt").write_text(FEEDS)
    agent = agents.start(cli.policy(CARVED), backend=backend)
    agent.wait_ready()
    quick = Prober(lab, timeout=2)
    probes = [("198.51.100.7", "8080/tcp"), ("203.0.113.20", "8080/tcp")]
    assert list(inet_outcomes(lab, quick, probes).values()) == ["timeout", "open"]
    (cli.workdir / "feeds.txt").write_text("203.0.113.20\n")

    def swapped() -> bool:
        return list(inet_outcomes(lab, quick, probes).values()) == ["open", "timeout"]

    assert wait_until(swapped, EVENT_BOUND, interval=0.5) is not None, agent.log()


def ipv4_feed(path: Path, listed: list[str], start: int = 1, header: bool = True) -> str:
    """100,000 IPv4 hosts of 10.0.0.0/8 from `start` and `listed`, under a comment
    header (read against the list before with set operations, listchange) or bare
    (read against its bytes, hostlines); the file's digest."""
    hosts = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(start, start + 100_000)]
    head = ["# feed of the day", "; its source"] if header else []
    data = ("\n".join([*head, *hosts, *listed]) + "\n").encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_an_ipv4_feed_edited_in_place_loads_its_change_exactly(
    lab: Lab, dockwall: Dockwall
) -> None:
    """An edit of an IPv4 host feed is read against the list last applied and loaded
    as the change found while reading it: the swapped sources are in force, the kernel
    set holds exactly the file (`plan --verify-lists` compares every element)."""
    listed = dockwall.workdir / "big.txt"
    ipv4_feed(listed, ["198.51.100.7"])
    dockwall.apply(BIG)
    quick = Prober(lab, timeout=2)
    probes = [("198.51.100.7", "8080/tcp"), ("203.0.113.20", "8080/tcp")]
    assert list(inet_outcomes(lab, quick, probes).values()) == ["timeout", "open"]
    ipv4_feed(listed, ["203.0.113.20"], start=1001)
    plan = dockwall.run("plan", "-f", str(dockwall.policy(BIG))).stdout
    assert re.search(r"list big: \+1001 -1001 \(in place", plan), plan
    dockwall.apply(BIG)
    assert list(inet_outcomes(lab, quick, probes).values()) == ["open", "timeout"]
    assert dockwall.plan_exit(BIG) == 0
    verify = ("plan", "--detailed-exitcode", "--verify-lists", "-f", str(dockwall.policy(BIG)))
    verified = dockwall.run(*verify, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def bare_feed(path: Path, hosts: list[str]) -> str:
    """The feed as most threat feeds are: one address per line and nothing else, which
    dockwall keeps as its bytes (HostLines); its digest."""
    data = "".join(f"{host}\n" for host in hosts).encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def kept_as_bytes(lab: Lab, digest: str) -> bool:
    """Whether the state directory keeps this version of the file as its bytes, with
    keys: the next version is then read against it as bytes."""
    lists = lab.names.state_dir / "dockwall-state" / "lists"
    return (lists / f"{digest}.keys").exists() and (lists / f"{digest}.txt").exists()


def test_a_bare_feed_is_read_against_its_bytes_and_loads_its_change_exactly(
    lab: Lab, dockwall: Dockwall
) -> None:
    """A feed of bare addresses edited here and there, then edited to repeat a line it
    keeps (which the bytes cannot vouch for, so it is read the careful way): each time
    the plan names the change exactly, the sources swapped are in force, and the
    kernel set holds exactly the file (`plan --verify-lists` compares every element)."""
    listed = dockwall.workdir / "big.txt"
    hosts = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, 100_001)]
    first = bare_feed(listed, [*hosts[:50_000], "198.51.100.7", *hosts[50_000:]])
    dockwall.apply(BIG)
    assert kept_as_bytes(lab, first)
    quick = Prober(lab, timeout=2)
    probes = [("198.51.100.7", "8080/tcp"), ("203.0.113.20", "8080/tcp")]
    assert list(inet_outcomes(lab, quick, probes).values()) == ["timeout", "open"]
    edited = [h for i, h in enumerate(hosts) if i % 97]
    edited[70_000:70_000] = ["203.0.113.20", "10.200.0.1"]
    second = bare_feed(listed, [*edited[:-3], "10.200.0.2", *edited[-3:]])
    removed, added = len(range(0, 100_000, 97)) + 1, 3
    plan = dockwall.run("plan", "-f", str(dockwall.policy(BIG))).stdout
    assert re.search(rf"list big: \+{added} -{removed} \(in place", plan), plan
    dockwall.apply(BIG)
    assert kept_as_bytes(lab, second)
    assert list(inet_outcomes(lab, quick, probes).values()) == ["open", "timeout"]
    verify = ("plan", "--detailed-exitcode", "--verify-lists", "-f", str(dockwall.policy(BIG)))
    verified = dockwall.run(*verify, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    rest = [host for host in edited if host != "203.0.113.20"]
    third = bare_feed(listed, [*rest[:10], "198.51.100.7", rest[500], *rest[10:]])
    plan = dockwall.run("plan", "-f", str(dockwall.policy(BIG))).stdout
    assert re.search(r"list big: \+1 -2 \(in place", plan), plan
    dockwall.apply(BIG)
    assert not kept_as_bytes(lab, third), "a repeated line: the careful reader's contents"
    assert list(inet_outcomes(lab, quick, probes).values()) == ["timeout", "open"]
    verified = dockwall.run(*verify, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_boot_restores_a_bare_feed_updated_in_place(lab: Lab, dockwall: Dockwall) -> None:
    """The state a bare feed's in-place update saves (the file's bytes and patched keys)
    is what `apply --boot` restores after a reboot: the listed source is refused, the
    source taken out of the list allowed, and the kernel set is exactly the file."""
    listed = dockwall.workdir / "big.txt"
    hosts = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, 50_001)]
    bare_feed(listed, [*hosts, "198.51.100.7"])
    dockwall.apply(BIG)
    updated = bare_feed(listed, [*hosts[:20_000], "203.0.113.20", *hosts[20_007:]])
    dockwall.apply(BIG)
    assert kept_as_bytes(lab, updated)
    pid = read_pid(lab.names.dockerd_pidfile)
    assert pid is not None
    processes.stop({pid})
    for command in [*WIPE, ["ipset", "destroy"]]:
        lab.host.run(command)
    assert "Restored" in dockwall.run("apply", "--boot").stdout
    lab.start_dockerd()
    if dockwall.backend == "iptables":
        dockwall.apply(BIG)
    quick = Prober(lab, timeout=2)
    probes = [("198.51.100.7", "8080/tcp"), ("203.0.113.20", "8080/tcp")]
    assert list(inet_outcomes(lab, quick, probes).values()) == ["open", "timeout"]
    verify = ("plan", "--detailed-exitcode", "--verify-lists", "-f", str(dockwall.policy(BIG)))
    verified = dockwall.run(*verify, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("header", [True, False], ids=["feed-with-header", "bare-feed"])
@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_the_agent_loads_an_edited_ipv4_feed_from_its_change(
    lab: Lab, cli: LabCli, agents: Agents, backend: str, header: bool
) -> None:
    listed = cli.workdir / "big.txt"
    ipv4_feed(listed, ["198.51.100.7"], header=header)
    agent = agents.start(cli.policy(BIG), backend=backend)
    agent.wait_ready()
    quick = Prober(lab, timeout=2)
    probes = [("198.51.100.7", "8080/tcp"), ("203.0.113.20", "8080/tcp")]
    assert list(inet_outcomes(lab, quick, probes).values()) == ["timeout", "open"]
    edited = ipv4_feed(listed, ["203.0.113.20"], start=501, header=header)

    def swapped() -> bool:
        return list(inet_outcomes(lab, quick, probes).values()) == ["open", "timeout"]

    assert wait_until(swapped, EVENT_BOUND, interval=0.5) is not None, agent.log()
    assert "list big: +501 -501 (in place" in agent.log(), agent.log()
    assert kept_as_bytes(lab, edited) is not header
    agents.stop_all()
    verify = ["plan", "--backend", backend, "--detailed-exitcode", "--verify-lists"]
    verified = cli.run(*verify, "-f", str(cli.policy(BIG)), check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_agent_never_applies_a_feed_half_written(lab: Lab, cli: LabCli, agents: Agents) -> None:
    """A feed rewritten in place over 1.6 s (truncated, then written in 20 chunks, as a
    slow `curl -o` does) is applied once, whole: the agent reads a list file only after
    it has been still for a moment, whatever its drift checks see in between."""
    feed = cli.workdir / "feeds.txt"
    feed.write_text("203.0.113.20\n")
    agent = agents.start(cli.policy(CARVED), backend="nftables")
    agent.wait_ready()
    hosts = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, 3001)]
    lines = [*hosts, "198.51.100.7"]
    chunk = len(lines) // 20 + 1
    with feed.open("w") as out:
        for start in range(0, len(lines), chunk):
            out.write("".join(f"{line}\n" for line in lines[start : start + chunk]))
            out.flush()
            time.sleep(0.08)
    quick = Prober(lab, timeout=2)
    probes = [("198.51.100.7", "8080/tcp"), ("203.0.113.20", "8080/tcp")]

    def swapped() -> bool:
        return list(inet_outcomes(lab, quick, probes).values()) == ["timeout", "open"]

    assert wait_until(swapped, EVENT_BOUND, interval=0.5) is not None, agent.log()
    loads = re.findall(r"list feeds: \+\d+ -\d+ \(in place, (\d+) entries\)", agent.log())
    assert loads == [str(len(lines))], agent.log()
