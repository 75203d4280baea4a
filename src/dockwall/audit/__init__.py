"""`dockwall audit`: finds firewall mistakes on a live host and in Dockerfiles/compose files."""
