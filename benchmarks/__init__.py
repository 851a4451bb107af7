"""Benchmarks: run `python benchmarks/hot_path.py` (see benchmarks/README.md)."""
