"""The socket table as `ss -Hlntuep` prints it, and which socket takes a packet."""

from __future__ import annotations

import pytest

from dockwall.errors import DockwallError
from dockwall.explain.addresses import parse_address
from dockwall.explain.sockets import Listener, listener_for, parse_ss, read_listeners

from .fakes import FakeRunner

# Captured from a scratch namespace with a socket of each kind (ss 6.1).
SS = """\
udp UNCONN 0      0                 0.0.0.0:7002 0.0.0.0:* users:(("python3",pid=10300,fd=11)) ino:13134 sk:b cgroup:/ <->
udp UNCONN 0      0                       *:7001       *:* users:(("python3",pid=10300,fd=9)) ino:13133 sk:c cgroup:/ v6only:0 <->
udp UNCONN 0      0                    [::]:7003    [::]:* users:(("python3",pid=10300,fd=12)) ino:13135 sk:d cgroup:/ v6only:1 <->
tcp LISTEN 0      128             127.0.0.1:7003 0.0.0.0:* users:(("python3",pid=10300,fd=5)) ino:13129 sk:e cgroup:/ <->
tcp LISTEN 0      128            0.0.0.0%lo:7005 0.0.0.0:* users:(("python3",pid=10300,fd=7)) ino:13131 sk:f cgroup:/ <->
tcp LISTEN 0      128                 [::1]:7006    [::]:* users:(("python3",pid=10300,fd=8)) ino:13132 sk:10 cgroup:/ v6only:1 <->
tcp LISTEN 0      128    [::ffff:127.0.0.1]:7004       *:* users:(("python3",pid=10300,fd=6)) ino:13130 sk:11 cgroup:/ v6only:0 <->
tcp LISTEN 0      128                  [::]:7002    [::]:* users:(("python3",pid=10300,fd=4)) ino:13128 sk:12 cgroup:/ v6only:1 <->
tcp LISTEN 0      128                     *:7001       *:* users:(("python3",pid=10300,fd=3)) ino:13127 sk:13 cgroup:/ v6only:0 <->
tcp LISTEN 0      4096              0.0.0.0:8080 0.0.0.0:* users:(("docker-proxy",pid=77,fd=4)) ino:1 sk:14 cgroup:/ <->
tcp LISTEN 0      4096         10.0.0.5:8080 0.0.0.0:* users:(("nginx",pid=78,fd=4)) ino:2 sk:15 cgroup:/ <->
tcp LISTEN 0      128        [fe80::1]%eth0:9000    [::]:* ino:3 sk:16 cgroup:/ v6only:1 <->
"""
TABLE = parse_ss(SS)


def lookup(proto: str, address: str, port: int, iif: str = "uplink") -> Listener | None:
    version, value = parse_address(address)
    return listener_for(TABLE, proto, version, value, port, iif)


def test_every_line_is_read_with_family_wildcard_and_v6only() -> None:
    assert len(TABLE) == 12
    dual = next(s for s in TABLE if s.proto == "tcp" and s.port == 7001)
    assert (dual.version, dual.address, dual.v6only) == (6, None, False)
    v6only = next(s for s in TABLE if s.proto == "tcp" and s.port == 7002)
    assert (v6only.version, v6only.address, v6only.v6only) == (6, None, True)
    assert next(s for s in TABLE if s.port == 7005).device == "lo"
    scoped = next(s for s in TABLE if s.port == 9000)
    assert (scoped.device, scoped.address) == ("eth0", parse_address("fe80::1")[1])


def test_dual_stack_wildcard_takes_ipv4_and_v6only_does_not() -> None:
    assert lookup("tcp", "198.51.100.2", 7001) is not None
    assert lookup("udp", "198.51.100.2", 7001) is not None
    assert lookup("tcp", "198.51.100.2", 7002) is None
    assert lookup("tcp", "2001:db8::2", 7002) is not None
    assert lookup("udp", "198.51.100.2", 7003) is None


def test_specific_address_takes_only_that_address() -> None:
    assert lookup("tcp", "127.0.0.1", 7003, "lo") is not None
    assert lookup("tcp", "198.51.100.2", 7003) is None
    assert lookup("tcp", "::1", 7006, "lo") is not None
    assert lookup("tcp", "127.0.0.1", 7006, "lo") is None


def test_v4_mapped_address_takes_that_ipv4_address() -> None:
    assert lookup("tcp", "127.0.0.1", 7004, "lo") is not None
    assert lookup("tcp", "198.51.100.2", 7004) is None


def test_device_bound_socket_takes_only_packets_from_that_device() -> None:
    assert lookup("tcp", "198.51.100.2", 7005, "lo") is not None
    assert lookup("tcp", "198.51.100.2", 7005, "uplink") is None


def test_tcp_and_udp_are_separate_tables() -> None:
    assert lookup("udp", "198.51.100.2", 7005, "lo") is None
    assert lookup("tcp", "198.51.100.2", 7002) is None
    assert lookup("udp", "198.51.100.2", 7002) is not None


def test_the_most_specific_socket_wins_and_keeps_its_process() -> None:
    found = lookup("tcp", "10.0.0.5", 8080)
    assert found is not None and found.process == "nginx"
    other = lookup("tcp", "198.51.100.2", 8080)
    assert other is not None and other.process == "docker-proxy"
    assert other.describe() == "0.0.0.0:8080/tcp (docker-proxy)"


def test_describe_says_when_a_wildcard_takes_ipv4_too() -> None:
    dual = lookup("tcp", "198.51.100.2", 7001)
    assert dual is not None and dual.describe() == "[::] (IPv4 too):7001/tcp (python3)"


def test_lines_that_are_not_sockets_are_skipped() -> None:
    assert parse_ss("\nState Recv-Q\ntcp LISTEN 0 1 0.0.0.0:* 0.0.0.0:*\n") == ()


def test_read_enters_the_container_namespace() -> None:
    runner = FakeRunner(lambda argv, _: (0, SS))
    assert len(read_listeners(runner, "/proc/42/ns/net")) == 12
    assert runner.calls[0][0] == ["nsenter", "--net=/proc/42/ns/net", "--", "ss", "-Hlntuep"]
    read_listeners(runner)
    assert runner.calls[1][0] == ["ss", "-Hlntuep"]


def test_read_failure_is_one_clear_error() -> None:
    runner = FakeRunner(lambda argv, _: (1, "nsenter: cannot open /proc/42/ns/net"))
    with pytest.raises(DockwallError, match="cannot open /proc/42/ns/net"):
        read_listeners(runner, "/proc/42/ns/net")


def test_unnamed_interface_reaches_device_bound_sockets() -> None:
    version, value = parse_address("198.51.100.2")
    assert listener_for(TABLE, "tcp", version, value, 7005, None) is not None
