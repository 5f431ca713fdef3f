"""The runtime every worker shares: the Redis store and its write batches, the worker loop, the supervisor
behind `qc up`, and the health checks behind `qc status`."""
