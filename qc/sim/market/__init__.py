"""The simulated market: seeded underlying, L2 book, prints, closing auction, option chains, history."""
