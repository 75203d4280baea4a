"""dockwall: a declarative ingress/egress firewall for Docker hosts."""

__version__ = "0.1.0"
