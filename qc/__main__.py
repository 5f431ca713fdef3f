"""``python -m qc`` works like ``qc``."""

from qc.cli import main

main()
