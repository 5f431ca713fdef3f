"""`python -m chaos` (`make chaos`): a whole simulated session under a seeded fault schedule; exit 0 when every
invariant holds, 1 otherwise. The options only pick the session and the seed; see ``chaos.run``."""

from __future__ import annotations

import logging
import secrets

import click

from chaos.run import PUMP_EVERY_S, Options, run
from chaos.schedule import KINDS


@click.command()
@click.option("--seed", type=int, help="The schedule's seed (default: a new one, printed for the replay).")
@click.option("--speed", type=click.FloatRange(min=1.0), default=30.0, show_default=True,
              help="Simulated seconds per real second (30: a 6.5-h session in about 13 min).")
@click.option("--start", "start", default="2026-11-24 09:30", show_default=True, metavar="'YYYY-MM-DD HH:MM'",
              help="Simulated start, New York time, inside a session.")
@click.option("--until", default="close", show_default=True, metavar="close|HH:MM",
              help="Simulated end: the close (and its auction) or an earlier HH:MM for a short run.")
@click.option("--pump-every", type=click.FloatRange(min=0.0), default=PUMP_EVERY_S, show_default=True,
              help="Real seconds between the signals the run publishes itself (0: only `qc signals`').")
@click.option("--only", default="", metavar="KIND,KIND",
              help=f"Keep only these fault kinds of the schedule (a short iteration): {', '.join(KINDS)}.")
def main(seed: int | None, speed: float, start: str, until: str, pump_every: float, only: str) -> None:
    """Run `qc up` on the simulator over a session while faults are injected, then check the invariants."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    chosen = seed if seed is not None else secrets.randbelow(1_000_000)
    kinds = tuple(k.strip() for k in only.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise click.BadParameter(f"unknown fault kinds {unknown}", param_hint="--only")
    raise SystemExit(run(Options(chosen, speed, start, until, pump_every, kinds)))


if __name__ == "__main__":
    main()
