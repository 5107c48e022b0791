"""Benchmarks of cidir against its peers (run ``benchmarks/run_benchmarks.py``)."""
