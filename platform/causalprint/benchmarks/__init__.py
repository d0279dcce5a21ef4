"""Benchmarks: jobs that measure, print and record figures in docs/results.md."""
