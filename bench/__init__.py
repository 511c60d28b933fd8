"""Benchmark suite (python bench/run.py); not part of the installed package."""
