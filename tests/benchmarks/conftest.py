# The benchmarks are a program (python -m tests.benchmarks), not tests: pytest collects nothing
# here even when pointed at the directory (test_benchmarks_smoke.py runs them as a program).
collect_ignore_glob = ["*.py"]
