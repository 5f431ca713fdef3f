"""Ingestion: IB market data (`qc stream`) and Alpha Vantage chains (`qc chains`) into Redis.

Pure builders (book, bars, aggressor, chain parsing, expiries, news, staleness) at this level;
``codec.py`` is the shape of every value ingestion writes, and the only way another subsystem reads
one; ``cycle/`` holds the workers, the only modules here that touch Redis, ib_async or HTTP.
"""
