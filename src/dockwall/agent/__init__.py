"""The agent: follows Docker's events and keeps the firewall equal to the policy."""
