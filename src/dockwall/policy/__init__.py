"""The policy: a YAML file (and container labels) saying which containers may talk to what.

`load_policy` and `parse_policy` read it into the frozen models below; every problem in
the input becomes one PolicyError that names the file, line, column and field.
"""

from dockwall.policy.dump import policy_to_yaml
from dockwall.policy.load import (
    MAX_LABEL_BYTES,
    LoadedPolicy,
    load_policy,
    parse_label_rules,
    parse_policy,
    read_policy,
)
from dockwall.policy.model import ContainerEntry, Defaults, LabelPolicy, Policy
from dockwall.policy.rules import (
    ComposeMatch,
    ContainerSelector,
    DirectionPolicy,
    EgressPolicy,
    EgressRule,
    IngressPolicy,
    IngressRule,
    Network,
    PortRange,
    Protocol,
)

__all__ = [
    "MAX_LABEL_BYTES",
    "ComposeMatch",
    "ContainerEntry",
    "ContainerSelector",
    "Defaults",
    "DirectionPolicy",
    "EgressPolicy",
    "EgressRule",
    "IngressPolicy",
    "IngressRule",
    "LabelPolicy",
    "LoadedPolicy",
    "Network",
    "Policy",
    "PortRange",
    "Protocol",
    "load_policy",
    "parse_label_rules",
    "parse_policy",
    "policy_to_yaml",
    "read_policy",
]
