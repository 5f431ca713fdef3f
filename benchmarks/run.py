"""Run every ``benchmarks/bench_*.py`` module and print each figure beside its target and baseline.

Usage: ``python -m benchmarks.run [name-filter]``. Each module exposes ``run() -> list[Figure]``.
Benchmarks never run in the test suite; machines here are shared and noisy.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from tabulate import tabulate

import benchmarks
from benchmarks._report import Figure


def main(argv: list[str]) -> int:
    wanted = argv[1] if len(argv) > 1 else ""
    rows: list[list[str]] = []
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_") or wanted not in info.name:
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        print(f"running {info.name} …", file=sys.stderr, flush=True)
        figures: list[Figure] = module.run()
        for f in figures:
            met = "" if f.met is None else ("yes" if f.met else "NO")
            rows.append([info.name.removeprefix("bench_"), f.name, f"{f.value:,.4g} {f.unit}",
                         f.target, met, f.baseline])
    print(tabulate(rows, headers=["bench", "figure", "measured", "target", "met", "baseline (same run)"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
