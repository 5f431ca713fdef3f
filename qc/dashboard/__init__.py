"""`qc dashboard`: the trading desk in a browser (panel documents from Redis, pushed to a static page) and /metrics."""
