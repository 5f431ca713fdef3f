"""The simulated broker: orders, matching, brackets and OCA, fills, the account ledger, reports."""
