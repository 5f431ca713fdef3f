"""Fuzz suites: mutated outside inputs through the real classifiers and parsers (no I/O)."""
