"""`qc analytics`'s worker: read what ingestion wrote to Redis, run qc.analytics, write analytics:*.

One ``Worker`` loop at ~1 s of clock time; ``schedule.Schedule`` says which task is due (pure), so
every task keeps the product sheet's cadence in market (or simulated) time without threads:
imbalance and VPIN every cycle, positioning + skew + regime every 30 s, flow clusters every 60 s.
"""
