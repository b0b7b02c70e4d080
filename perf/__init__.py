"""pytest-benchmark suites (run with ``python -m pytest perf``; not part of the test run)."""
