"""A disposable, fully isolated Docker host for trying dockwall and testing it with packets.

Nothing here touches the machine's own network namespace: every interface, route,
firewall rule and daemon lives in namespaces the lab creates and removes again.
"""
