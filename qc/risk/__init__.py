"""Risk: the trading state and its breakers, and the pre-trade check every order passes before it is sent.

Domain code, pure: readings, positions and limits in, verdicts out; the time is passed in. The
``qc risk`` worker feeds it from Redis and ``qc execute`` asks :func:`qc.risk.pretrade.check`
before placing any order.
"""
