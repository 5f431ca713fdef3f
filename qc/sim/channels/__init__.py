"""Telegram, X and webhook receivers on loopback: where `qc distribute` delivers under `qc sim`.

Tests and demos must never reach the internet, yet the sender has to meet the real channels' limits
and error bodies, so the stand-ins enforce them (in simulated time) and record what arrived.
"""
