"""qc: QuantiCity Capital's options-trading platform (see README.md and DESIGN.md)."""

__version__ = "0.1.0"
