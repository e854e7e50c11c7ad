"""Benchmarks: run with ``python -m benchmarks.<name>``; results in ``benchmarks/RESULTS.md``."""
