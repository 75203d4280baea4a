"""Seeing what the firewall does: the drop log (NFLOG), its journal, and metrics."""
