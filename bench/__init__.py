"""Benchmarks: `python -m bench` runs them in a lab and writes docs/benchmarks.md."""
