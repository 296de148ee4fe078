"""Benchmarks: scripts that print figures (never timed asserts). `python -m benchmarks` runs all."""
