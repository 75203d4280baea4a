"""The cluster view for `dockwall status --swarm`, read on a manager from Swarm itself.

No protocol of dockwall's own: the agent is a global service whose policy is a Swarm
config mounted at POLICY_TARGET, so the service is found by that mount, the cluster's
policy version is the config the service names now, and each node's agent task says
which config it runs and whether it is running. A rolling update (`docker service update
--config-rm old --config-add source=new,target=...`) shows as nodes moving from the old
version to the new one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import docker
from docker.errors import DockerException

from dockwall.errors import DockwallError

POLICY_TARGET = "/etc/dockwall/policy.yaml"
OVERLAY_NOTE = (
    "traffic between tasks on an overlay network travels inside VXLAN and never meets a "
    "host's forward path: dockwall filters published ports and each task's egress through "
    "docker_gwbridge, not task-to-task traffic"
)


@dataclass(frozen=True)
class NodeStatus:
    node: str
    hostname: str
    address: str
    role: str
    availability: str
    state: str
    agent: str
    policy_version: str
    in_sync: bool


def policy_config(spec: dict[str, Any]) -> str | None:
    """The name of the config mounted as the policy in a service or task spec."""
    container = (spec.get("TaskTemplate") or spec).get("ContainerSpec") or {}
    for config in container.get("Configs") or []:
        if (config.get("File") or {}).get("Name") == POLICY_TARGET:
            return str(config.get("ConfigName") or "")
    return None


def agent_service(services: list[dict[str, Any]]) -> dict[str, Any]:
    found = [s for s in services if policy_config(s.get("Spec") or {}) is not None]
    if len(found) != 1:
        names = ", ".join(str((s.get("Spec") or {}).get("Name")) for s in found) or "none"
        raise DockwallError(
            f"expected one service with a config mounted at {POLICY_TARGET}, found {names}: "
            "deploy the agent as in deploy/swarm-stack.yaml"
        )
    return found[0]


def node_rows(
    nodes: list[dict[str, Any]], service: dict[str, Any], tasks: list[dict[str, Any]]
) -> list[NodeStatus]:
    """One row per node; a node's newest agent task speaks for it."""
    wanted = policy_config(service.get("Spec") or {}) or ""
    newest: dict[str, dict[str, Any]] = {}
    for task in sorted(tasks, key=lambda t: str(t.get("CreatedAt") or "")):
        newest[str(task.get("NodeID") or "")] = task
    rows = []
    for node in sorted(nodes, key=lambda n: str((n.get("Description") or {}).get("Hostname"))):
        task = newest.get(str(node.get("ID")), {})
        state = str((task.get("Status") or {}).get("State") or "none")
        version = policy_config(task.get("Spec") or {}) or ""
        rows.append(
            NodeStatus(
                node=str(node.get("ID", ""))[:12],
                hostname=str((node.get("Description") or {}).get("Hostname") or ""),
                address=str((node.get("Status") or {}).get("Addr") or ""),
                role=str((node.get("Spec") or {}).get("Role") or ""),
                availability=str((node.get("Spec") or {}).get("Availability") or ""),
                state=str((node.get("Status") or {}).get("State") or ""),
                agent=state,
                policy_version=version,
                in_sync=state == "running" and version == wanted,
            )
        )
    return rows


def read_cluster(client: docker.DockerClient) -> dict[str, Any]:
    """The report `status --swarm --json` prints."""
    try:
        services = client.api.services()  # type: ignore[no-untyped-call]
        service = agent_service(services)
        nodes = client.api.nodes()
        tasks = client.api.tasks(filters={"service": service["ID"]})  # type: ignore[no-untyped-call]
    except DockerException as exc:
        raise DockwallError(f"cannot read the Swarm (run this on a manager): {exc}") from exc
    rows = node_rows(nodes, service, tasks)
    return {
        "service": (service.get("Spec") or {}).get("Name"),
        "policy_version": policy_config(service.get("Spec") or {}),
        "in_sync": all(r.in_sync for r in rows),
        "nodes": [asdict(r) for r in rows],
        "note": OVERLAY_NOTE,
    }
