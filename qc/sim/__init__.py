"""`qc sim`: the outside world qc runs against when no broker or data vendor is configured.

Only ``qc/commands/sim.py`` and tests import this package: production code reaches the simulator
the way it reaches the real thing, over the IB API socket and HTTP.
"""
