"""`qc risk`'s glue: latch trading states in Redis, publish the live exposure, and the out-of-band kill switch."""
