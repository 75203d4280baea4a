"""Helpers of bench_datapath.py: lab setup, the four firewall setups, the measurements."""
