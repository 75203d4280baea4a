"""The firewall commands of the CLI, one module per concern."""
