"""Ingestion glue: the `qc stream` and `qc chains` workers, the IB feed and the Alpha Vantage client.

The only part of ``qc.ingest`` that touches Redis, ib_async or HTTP; it writes through ``qc.ingest.codec``.
"""
