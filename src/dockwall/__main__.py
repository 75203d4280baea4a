"""`python -m dockwall` is the same as the `dockwall` command."""

from dockwall.cli import main

main()
