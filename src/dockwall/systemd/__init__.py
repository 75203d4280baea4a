"""systemd units shipped with dockwall (read with importlib.resources)."""
