"""Reading Docker: the endpoint as Docker's CLI finds it, and odd API data tolerated."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dockwall.errors import DockwallError
from dockwall.sources.docker_state import bridge_of, container_of, docker_endpoint, ports_of


def test_docker_host_wins(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": "tcp://192.0.2.5:2376", "DOCKER_CONFIG": str(tmp_path)}
    assert docker_endpoint(env) == "tcp://192.0.2.5:2376"


def test_current_context_from_cli_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "lab"}))
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"lab").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": "lab", "Endpoints": {"docker": {"Host": "unix:///run/lab.sock"}}})
    )
    assert docker_endpoint({"DOCKER_CONFIG": str(tmp_path)}) == "unix:///run/lab.sock"
    assert docker_endpoint({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "default"}) == (
        "unix:///var/run/docker.sock"
    )


def test_unknown_context_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DockwallError, match="context 'nope' not found"):
        docker_endpoint({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "nope"})


def test_default_socket(tmp_path: Path) -> None:
    assert docker_endpoint({"DOCKER_CONFIG": str(tmp_path)}) == "unix:///var/run/docker.sock"


def test_bridges_and_odd_networks() -> None:
    default = {
        "Name": "bridge",
        "Id": "a" * 64,
        "Driver": "bridge",
        "Options": {"com.docker.network.bridge.name": "docker0"},
        "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}, {"Subnet": "not-a-cidr"}]},
    }
    user = {"Name": "shop", "Id": "5b3cfa957ae6" + "0" * 52, "Driver": "bridge", "IPAM": None}
    bridge = bridge_of(default)
    assert bridge is not None and bridge.interface == "docker0" and len(bridge.subnets) == 1
    shop = bridge_of(user)
    assert shop is not None and shop.interface == "br-5b3cfa957ae6" and shop.subnets == ()
    assert bridge_of({"Name": "host", "Id": "h", "Driver": "host"}) is None


def test_container_with_host_networking_and_garbage_ports() -> None:
    attrs = {
        "Id": "c" * 64,
        "Name": "/odd",
        "Config": {"Labels": None},
        "NetworkSettings": {
            "Networks": {"host": {"IPAddress": ""}},
            "Ports": {
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                "81/tcp": None,
                "82/tcp": [{"HostPort": "x"}],
            },
        },
    }
    container = container_of(attrs, {}, {})
    assert container.name == "odd" and container.attachments == ()
    assert [str(p) for p in ports_of(attrs)] == ["8080->80/tcp"]
