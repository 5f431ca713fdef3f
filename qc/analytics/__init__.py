"""Analytics: the pure numerical library (numpy in, numpy/dataclasses out, time passed in, no Redis),
``codec.py`` for the values `qc analytics` writes, ``cycle/`` (the worker) and ``report.py`` (`qc gex`).
"""
