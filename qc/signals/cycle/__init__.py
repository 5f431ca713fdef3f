"""`qc signals`' glue: read analytics and ingestion through their codecs, score, choose, dedup, publish."""
