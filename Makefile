# Both targets work on a fresh Debian 12 machine as root: they install what they need.
.PHONY: setup demo test lint unit lab-test bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/dockwall lab demo

lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy

test: lint
	.venv/bin/pytest -n 2 --dist loadgroup --durations=30 -m "not exclusive" tests
	.venv/bin/pytest -m exclusive tests
	.venv/bin/dockwall lab down --all

bench: setup
	.venv/bin/python -m bench
