"""The one ib_async adapter: connection, reconnect with backoff, error classification.

Ingestion uses it now; execution and risk will. Subscriptions and order handling live with their
subsystems, which subclass or compose :class:`qc.ib.connection.IBConnection`.
"""
