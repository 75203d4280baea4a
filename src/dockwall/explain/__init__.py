"""`dockwall explain`: simulates a connection through the host's live netfilter rules."""
