"""Alpha Vantage on loopback: JSON bodies built from the simulated market, and the HTTP server."""
