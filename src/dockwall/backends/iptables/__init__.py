"""The iptables backend: dockwall's own chains, one jump from DOCKER-USER and one from INPUT."""

from dockwall.backends.iptables.backend import IptablesBackend

__all__ = ["IptablesBackend"]
