"""Foundations with no I/O: settings, errors, THE key schema, clock and calendar, models, logging, backoff.

Everything else in qc may import these; they import nothing of qc outside ``qc.core`` (import-linter).
"""
