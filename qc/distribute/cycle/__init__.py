"""`qc distribute`'s Redis glue: tier queues and the mover, channel outboxes, idempotency, shared rate
limits, metrics and dead letters. Every script and batch touches one key (Redis Cluster), and every
time decision reads Redis ``TIME`` mapped to qc's clock (:mod:`.clockmap`)."""

NAME = "distribute"  # the worker's name: heartbeat:distribute, its monitoring:workers entry
