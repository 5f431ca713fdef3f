"""The simulated IB Gateway: the TWS API wire codec, sessions, market-data feeds and order requests."""
