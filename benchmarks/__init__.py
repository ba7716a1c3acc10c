"""Benchmarks (scripts that print measured figures; not tests)."""
