"""Ingestion: IB market data (`qc stream`) and Alpha Vantage chains (`qc chains`) into Redis.

Pure builders (book, bars, aggressor) sit beside the adapters that feed them and the glue that
writes them; only the glue modules touch Redis.
"""
