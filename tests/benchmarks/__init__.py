"""Performance benchmarks: the project beside a plain baseline, as ratios (README "Benchmarks").

Run with `python -m tests.benchmarks [--quick] [--json FILE] [--only NAME ...]`; never part of
the default pytest run (conftest.py keeps pytest out of this package).
"""
