"""Analytics glue: the `qc analytics` worker, reading inputs and writing results through the codecs."""
