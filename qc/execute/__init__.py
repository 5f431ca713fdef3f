"""`qc execute`: order intents, brackets, trailing stops, fills, positions and reconciliation."""
