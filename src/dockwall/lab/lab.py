"""Brings a lab up and down: namespaces, a real dockerd, listeners and sample containers."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from dockwall.errors import DockwallError
from dockwall.lab import mounts, netns, processes, sockets
from dockwall.lab import topology as t
from dockwall.lab.image import rootfs_tar
from dockwall.runner import Runner, SubprocessRunner, netns_path

DOCKERD_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class SampleContainer:
    """A container the lab starts so there is something to protect from the first minute."""

    name: str
    network: str
    ports: dict[str, int]
    labels: dict[str, str]


SAMPLES = (
    SampleContainer("web", "bridge", {"80/tcp": 8080, "53/udp": 8053}, {}),
    SampleContainer("db", "shop", {"5432/tcp": 5432}, {}),
    SampleContainer(
        "worker",
        "shop",
        {},
        {"com.docker.compose.project": "shop", "com.docker.compose.service": "worker"},
    ),
)


class Lab:
    """One lab, addressed by name; every method is safe to call on a half-built lab."""

    def __init__(self, name: str, runner: Runner | None = None) -> None:
        self.names = t.LabNames.checked(name)
        self.runner = runner or SubprocessRunner()

    @property
    def host(self) -> SubprocessRunner:
        """Runs commands on the lab's Docker host, with DOCKER_HOST pointing at its dockerd
        and dockwall's state kept inside the lab, as on a host of its own."""
        return SubprocessRunner(
            netns=netns_path(self.names.host_ns),
            env={
                "DOCKER_HOST": self.names.docker_host,
                "DOCKWALL_STATE_DIR": str(self.names.state_dir / "dockwall-state"),
                "DOCKWALL_RUN_DIR": str(self.names.state_dir / "dockwall-run"),
                "DOCKWALL_RESOLV_CONF": str(self.names.resolv_conf),
            },
        )

    def exists(self) -> bool:
        return self.names.host_ns in netns.list_namespaces(self.runner)

    def up(self, *, samples: bool = True) -> None:
        """Builds the whole lab; on any failure it tears down what it built."""
        if self.exists():
            raise DockwallError(f"lab {self.names.name!r} is already up")
        try:
            self.names.state_dir.mkdir(parents=True, exist_ok=True)
            self.names.data_dir.mkdir(parents=True, exist_ok=True)
            netns.create_namespaces(self.runner, self.names)
            netns.wire_uplink(self.runner, self.names)
            netns.add_internet_hosts(self.runner, self.names)
            self.start_listeners()
            self.start_dockerd()
            self.import_image()
            if samples:
                self.start_samples()
        except BaseException:
            self.down()
            raise

    def start_listeners(self) -> None:
        ports = t.INTERNET_PORTS
        inet = netns.in_ns(self.names.inet_ns)
        inet_log = self.names.state_dir / "internet-listener.log"
        inet_pid = inet.spawn(
            netns.listener_argv(self.names.name, t.INTERNET_V4 + t.INTERNET_V6, ports, ports),
            log_path=str(inet_log),
        )
        self.start_dns_server(inet)
        host_port = (t.HOST_SERVICE_PORT,)
        host_log = self.names.state_dir / "host-listener.log"
        host_pid = netns.in_ns(self.names.host_ns).spawn(
            netns.listener_argv(self.names.name, (), host_port, host_port), log_path=str(host_log)
        )
        sockets.wait_bound(inet_pid, sockets.listener_sockets(ports, ports), inet_log)
        sockets.wait_bound(host_pid, sockets.listener_sockets(host_port, host_port), host_log)

    def start_dns_server(self, inet: SubprocessRunner) -> None:
        """The lab's own DNS (dnsserver.py), so containers' lookups never leave the lab."""
        n = self.names
        if not n.zone_file.exists():
            n.zone_file.write_text(json.dumps({"records": []}))
        n.resolv_conf.write_text(f"nameserver {t.DNS_V4}\n")
        argv = [sys.executable, "-m", "dockwall.lab.dnsserver", "--lab", n.name]
        argv += ["--addr", t.DNS_V4, "--addr", t.DNS_V6, "--zone", str(n.zone_file)]
        inet.spawn(argv, log_path=str(n.state_dir / "dns-server.log"))

    def dockerd_argv(self) -> list[str]:
        n = self.names
        return [
            "dockerd",
            "--data-root", str(n.data_dir / "docker"),
            "--exec-root", str(n.state_dir / "exec"),
            "--pidfile", str(n.dockerd_pidfile),
            "--host", n.docker_host,
            "--containerd-namespace", n.containerd_namespace,
            "--containerd-plugins-namespace", f"{n.containerd_namespace}-plugins",
            "--cgroup-parent", f"/{n.cgroup_parent}",
            "--ipv6", "--fixed-cidr-v6", t.DOCKER_V6_CIDR,
            "--ip6tables", "--experimental",
            "--live-restore",
            "--dns", t.DNS_V4,
        ]  # fmt: skip

    def dockerd_env(self) -> dict[str, str]:
        """Extra environment for dockerd (a cluster node's keeps registry lookups in the lab)."""
        return {}

    def start_dockerd(self) -> None:
        """dockerd runs under nsenter --net only, so it still sees the host's cgroup mounts."""
        runner = SubprocessRunner(netns=netns_path(self.names.host_ns), env=self.dockerd_env())
        pid = runner.spawn(self.dockerd_argv(), log_path=str(self.names.state_dir / "dockerd.log"))
        deadline = time.monotonic() + DOCKERD_START_TIMEOUT
        while time.monotonic() < deadline and processes.is_running(pid):
            try:
                with self.client() as client:
                    client.ping()
                return
            except DockerException:
                time.sleep(0.2)
        log = (self.names.state_dir / "dockerd.log").read_text(errors="replace")[-2000:]
        raise DockwallError(f"dockerd of lab {self.names.name} did not start:\n{log}")

    def restart_dockerd(self) -> None:
        """Stop and start dockerd as a host upgrade or crash would; containers live on
        (live-restore), and Docker rebuilds its own chains on the way up."""
        pid = read_pid(self.names.dockerd_pidfile)
        if pid is not None:
            processes.stop({pid})
        self.start_dockerd()

    @contextmanager
    def client(self) -> Iterator[docker.DockerClient]:
        client = docker.DockerClient(base_url=self.names.docker_host, timeout=60)
        try:
            yield client
        finally:
            client.close()

    def import_image(self) -> None:
        with self.client() as client:
            client.api.import_image_from_data(rootfs_tar(), repository=t.IMAGE)

    def start_samples(self) -> None:
        with self.client() as client:
            client.networks.create(
                "shop",
                driver="bridge",
                enable_ipv6=True,
                ipam=docker.types.IPAMConfig(
                    pool_configs=[
                        docker.types.IPAMPool(subnet=t.SHOP_V4_CIDR),
                        docker.types.IPAMPool(subnet=t.SHOP_V6_CIDR),
                    ]
                ),
            )
        for sample in SAMPLES:
            self.run_container(
                sample.name, sample.ports, network=sample.network, labels=sample.labels
            )

    def run_container(
        self,
        name: str,
        ports: dict[str, int] | None = None,
        *,
        network: str = "bridge",
        labels: dict[str, str] | None = None,
        listen: bool = True,
    ) -> dict[str, Any]:
        """Starts a container and (unless `listen` is false, for a published port nothing
        answers on) a listener inside it on every port it exposes."""
        ports = ports or {}
        with self.client() as client:
            container = client.containers.run(
                t.IMAGE,
                ["sleep", "2147483647"],
                name=name,
                detach=True,
                ports=ports,
                network=network,
                labels=labels or {},
            )
            container.reload()
            attrs: dict[str, Any] = container.attrs
        tcp = tuple(int(k.split("/")[0]) for k in ports if k.endswith("/tcp"))
        udp = tuple(int(k.split("/")[0]) for k in ports if k.endswith("/udp"))
        if listen and (tcp or udp):
            pid = attrs["State"]["Pid"]
            log = self.names.state_dir / f"listener-{name}.log"
            SubprocessRunner(netns=f"/proc/{pid}/ns/net").spawn(
                netns.listener_argv(self.names.name, (), tcp, udp), log_path=str(log)
            )
            sockets.wait_bound(pid, sockets.listener_sockets(tcp, udp), log)
        return attrs

    def down(self) -> None:
        """Removes every trace of the lab; works after a crash and when half-built."""
        self.remove_containers()
        inodes = self.namespace_inodes()
        n = self.names
        markers = (f" --lab {n.name} ", f"{n.state_dir}/", f"{n.data_dir}/")
        processes.stop(processes.lab_pids(inodes, markers, n.cgroup_parent))
        processes.remove_cgroups(n.cgroup_parent)
        mounts.unmount_all(self.runner, (n.state_dir, n.data_dir))
        for ns in (n.host_ns, n.inet_ns):
            if ns in netns.list_namespaces(self.runner):
                self.runner.run(["ip", "netns", "delete", ns])
        for directory in (n.state_dir, n.data_dir):
            shutil.rmtree(directory, ignore_errors=True)

    def remove_containers(self) -> None:
        """A clean `docker rm -f` first, so dockerd releases its mounts by itself."""
        if not self.names.socket.exists():
            return
        try:
            client = docker.DockerClient(base_url=self.names.docker_host, timeout=10)
            try:
                for container in client.containers.list(all=True):
                    try:
                        container.remove(force=True)
                    except NotFound:
                        continue
            finally:
                client.close()
        except DockerException:
            return

    def namespace_inodes(self) -> set[int]:
        inodes: set[int] = set()
        for ns in (self.names.host_ns, self.names.inet_ns):
            try:
                inodes.add(os.stat(netns_path(ns)).st_ino)
            except OSError:
                continue
        return inodes

    def status(self) -> dict[str, Any]:
        """What is running, for `lab status` (a dict so --json and the table agree)."""
        info: dict[str, Any] = {"name": self.names.name, "docker_host": self.names.docker_host}
        info["namespaces"] = [
            ns
            for ns in netns.list_namespaces(self.runner)
            if ns.startswith(f"{t.PREFIX}{self.names.name}-")
        ]
        pid = read_pid(self.names.dockerd_pidfile)
        info["dockerd_pid"] = pid if pid and processes.is_running(pid) else None
        info["containers"] = []
        if info["dockerd_pid"]:
            with self.client() as client:
                info["containers"] = [
                    {"name": c.name, "status": c.status, "ports": c.ports}
                    for c in client.containers.list(all=True)
                ]
        return info


def read_pid(path: os.PathLike[str]) -> int | None:
    try:
        return int(open(path).read().strip())
    except (OSError, ValueError):
        return None


def known_labs(runner: Runner) -> list[str]:
    """Every lab with any trace on this machine: namespaces, directories or cgroups."""
    found: set[str] = set()
    for ns in netns.list_namespaces(runner):
        if ns.startswith(t.PREFIX) and "-" in ns[len(t.PREFIX) :]:
            found.add(ns[len(t.PREFIX) :].rsplit("-", 1)[0])
    for root in (t.STATE_ROOT, t.DATA_ROOT):
        if root.is_dir():
            found.update(p.name for p in root.iterdir())
    if processes.CGROUP_ROOT.is_dir():
        for hierarchy in processes.CGROUP_ROOT.iterdir():
            if hierarchy.is_dir():
                found.update(
                    p.name[len(t.PREFIX) :]
                    for p in hierarchy.iterdir()
                    if p.is_dir() and p.name.startswith(t.PREFIX)
                )
    return sorted(n for n in found if t.NAME_PATTERN.fullmatch(n))


def json_status(labs: list[Lab]) -> str:
    return json.dumps([lab.status() for lab in labs], indent=2, default=str)
