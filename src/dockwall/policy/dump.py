"""Writing a policy back out as YAML, in the same spelling a person would use."""

from __future__ import annotations

from typing import Any

import yaml

from dockwall.policy.logging import LogPolicy
from dockwall.policy.model import ContainerEntry, LabelPolicy, Policy
from dockwall.policy.rules import (
    ContainerSelector,
    DirectionPolicy,
    EgressRule,
    IngressRule,
    PortRange,
)

__all__ = ["policy_to_yaml"]


class _Inline(list[str]):
    """A list of short words, written on one line: `from: [any]`."""


class _Dumper(yaml.SafeDumper):
    """Indents block lists under their key, which is how policies are written by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_inline(dumper: yaml.SafeDumper, data: _Inline) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(_Inline, _represent_inline)


def policy_to_yaml(policy: Policy) -> str:
    """A YAML document that parse_policy reads back to an equal Policy."""
    data: dict[str, Any] = {
        "version": policy.version,
        "backend": policy.backend,
        "defaults": {
            "ingress": policy.defaults.ingress,
            "egress": policy.defaults.egress,
            "peers": policy.defaults.peers,
            **_deny_with(policy.defaults.deny_with),
        },
        "labels": _labels(policy.labels),
        **_lists(policy),
        "log": _log(policy.log),
        "containers": [_entry(entry) for entry in policy.containers],
    }
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def _deny_with(chosen: str) -> dict[str, Any]:
    """Only when it is not the default, so policies that never chose read as before."""
    return {} if chosen == "drop" else {"deny_with": chosen}


def _lists(policy: Policy) -> dict[str, Any]:
    if not policy.lists:
        return {}
    return {"lists": {name: spec.model_dump() for name, spec in policy.lists.items()}}


def _labels(labels: LabelPolicy) -> dict[str, Any]:
    data: dict[str, Any] = {"trust": labels.trust, "containers": labels.containers}
    if labels.ingress_from is not None:
        data["ingress_from"] = _addresses(labels.ingress_from)
    if labels.egress_to is not None:
        data["egress_to"] = _addresses(labels.egress_to)
    return data


def _log(log: LogPolicy) -> dict[str, Any]:
    data: dict[str, Any] = {"group": log.group}
    for name, rate in (("ingress", log.ingress), ("egress", log.egress), ("peers", log.peers)):
        data[name] = (
            "off"
            if rate is None
            else {"rate": f"{rate.rate[0]}/{rate.rate[1]}", "burst": rate.burst}
        )
    return data


def _selector(selector: ContainerSelector) -> dict[str, Any]:
    if selector.compose is not None:
        return {"compose": selector.compose.model_dump(exclude_none=True)}
    if selector.label is not None:
        return {"label": "=".join(selector.label)}
    if selector.service is not None:
        return {"service": selector.service}
    if selector.stack is not None:
        return {"stack": selector.stack}
    return {"name": selector.name}


def _entry(entry: ContainerEntry) -> dict[str, Any]:
    data = _selector(entry)
    if entry.ingress is not None:
        data["ingress"] = _direction(entry.ingress, _ingress_rule)
    if entry.egress is not None:
        data["egress"] = _direction(entry.egress, _egress_rule)
    if entry.deny_with is not None:
        data["deny_with"] = entry.deny_with
    return data


def _direction(policy: DirectionPolicy[Any], rule: Any) -> str | list[dict[str, Any]]:
    if policy.mode == "list":
        return [rule(item) for item in policy.rules]
    return policy.mode


def _ingress_rule(rule: IngressRule) -> dict[str, Any]:
    return {
        **_ports("port", "ports", rule.host_ports),
        **_ports("container_port", "container_ports", rule.container_ports),
        **_peers("from", rule.sources, rule.peer_sources),
        **_containers("from_containers", rule.from_containers),
        **_excepts(rule.excepts),
    }


def _egress_rule(rule: EgressRule) -> dict[str, Any]:
    return {
        **_peers("to", rule.destinations, rule.peer_destinations),
        **_ports("port", "ports", rule.ports),
        **_containers("to_containers", rule.to_containers),
        **_excepts(rule.excepts),
    }


def _excepts(excepts: tuple[Any, ...]) -> dict[str, Any]:
    return {"except": _addresses(excepts)} if excepts else {}


def _peers(
    key: str, given: tuple[Any, ...] | None, effective: tuple[Any, ...] | None
) -> dict[str, Any]:
    """The address list; left out when a rule names only containers (no address at all)."""
    return {} if effective == () else {key: _addresses(given)}


def _containers(key: str, selectors: tuple[ContainerSelector, ...]) -> dict[str, Any]:
    return {key: [_selector(s) for s in selectors]} if selectors else {}


def _ports(one: str, many: str, ports: tuple[PortRange, ...]) -> dict[str, Any]:
    """`port: X` for one port, `ports: [X, Y]` for more, nothing for every port."""
    if len(ports) == 1:
        return {one: str(ports[0])}
    return {many: _Inline(str(port) for port in ports)} if ports else {}


def _addresses(networks: tuple[Any, ...] | None) -> _Inline:
    return _Inline(["any"] if networks is None else [str(network) for network in networks])
