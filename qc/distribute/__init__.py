"""`qc distribute`: each emitted signal to subscriber tiers (premium at once, basic +60 s, free +300 s) on
Telegram, signed webhooks and X.

Pure domain here (``model``, ``config``, ``render``, ``policy``, ``codec``): dataclasses in and out, time
passed in, no I/O. The Redis queues, the mover, the token buckets and the HTTP senders are the glue
(``cycle/``); ``report.py`` answers ``qc distribute status``.
"""
