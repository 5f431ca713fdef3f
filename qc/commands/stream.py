"""`qc stream`: IB depth, quotes, prints, bars and auction imbalance into Redis, live."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import click

from qc.commands import output
from qc.core.config import Settings, parse_symbols
from qc.core.errors import QcError, StoreUnavailable

if TYPE_CHECKING:
    from qc.runtime.store import Store

EPILOG = """\b
Examples:
  qc stream                      the QC_SYMBOLS universe from QC_IB_HOST:QC_IB_PORT
  qc stream SPY QQQ IWM          then: redis-cli hlen market:SPY:book
  qc stream SPY --once           one snapshot of each feed, then exit (cron, smoke tests);
                                 refused (exit 1) while a live `qc stream` runs
"""


@click.command("stream", epilog=EPILOG)
@click.argument("symbols", nargs=-1)
@click.option("--once", is_flag=True, help="Write one snapshot of each feed, then exit.")
@click.option("--once-wait", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="With --once: seconds to wait for every feed.")
@click.option("--depth-rows", type=click.IntRange(1, 50), default=10, show_default=True,
              help="Book levels per side (HLEN market:SYM:book is twice this).")
@click.option("--max-backoff", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
              help="Cap of the reconnect and Redis backoff, seconds.")
@click.option("--resubscribe-every", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Real seconds between resubscriptions of a silent feed.")
@click.pass_obj
def command(settings: Settings, symbols: tuple[str, ...], once: bool, once_wait: float, depth_rows: int,
            max_backoff: float, resubscribe_every: float) -> None:
    """Stream IB market data for SYMBOLS (default: QC_SYMBOLS) into Redis, reconnecting by itself."""
    output.log_to_file(settings, "stream", once)
    from qc.ingest.cycle.ib_feed import FeedOptions  # ib_async: only when the verb runs
    from qc.ingest.cycle.stream_run import StreamOptions, run
    from qc.runtime.simclock import clock_for
    from qc.runtime.store import connect
    from qc.runtime.worker import SystemdNotifier

    chosen = parse_symbols(",".join(symbols), "SYMBOLS") if symbols else settings.symbols
    if settings.log_level != "DEBUG":
        logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # qc logs what matters, once
    feed = FeedOptions(host=settings.ib_host, port=settings.ib_port, client_id=settings.ib_client_id,
                       rows=depth_rows, backoff_cap_s=max_backoff, resubscribe_every_s=resubscribe_every)
    store = connect(settings)
    if once:
        _refuse_beside_a_live_stream(store)
    options = StreamOptions(feed=feed, symbols=chosen, once=once, once_wait_s=once_wait,
                            redis_backoff_cap_s=max_backoff, notifier=SystemdNotifier.from_environ(os.environ))
    try:
        code = run(store, clock_for(store, settings, uses=("ib",)), options)
    finally:
        store.close()
    raise SystemExit(code)


def _refuse_beside_a_live_stream(store: Store) -> None:
    """A snapshot beside the live stream would fight it for the IB client id, the flag and the heartbeat."""
    from qc.core import clock
    from qc.runtime.health import INGESTION_MODULE
    from qc.runtime.liveness import live_worker
    from qc.runtime.store import REDIS_ERRORS

    try:
        live = live_worker(store, INGESTION_MODULE, clock.wall_epoch())
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable at {store.address}: {exc}", "check QC_REDIS_URL") from None
    if live is not None:
        raise QcError(f"qc stream is already live ({live.describe()}); --once would clobber its connection flag "
                      "and heartbeat", "read its data instead (qc status; redis-cli hgetall market:SPY:book)")
