"""Firewall backends: each renders the IR, reads back what is live, and applies atomically."""
