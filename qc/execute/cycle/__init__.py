"""The executor\x27s glue: Redis, the IB connection, the loop."""
