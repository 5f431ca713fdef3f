"""`qc sim`: a simulated IB Gateway, Alpha Vantage and signal channels on loopback; `qc sim ctl` injects faults."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import click

from qc.commands import output
from qc.core import clock
from qc.core.config import Settings, parse_symbols
from qc.core.errors import QcError, StoreUnavailable

if TYPE_CHECKING:
    from qc.runtime.store import Store

EPILOG = """\b
Examples:
  qc sim                                       real time if the market is open, else 09:45 of the last session
  qc sim --start "2026-11-24 15:40" --speed 10 the closing auction in a few minutes
  qc sim --ib-port 4002 --av-port 8765 --seed 42 --symbols SPY,QQQ,IWM
  qc sim ctl drop-sockets                      then watch `qc status` and the workers recover
  qc sim ctl silence SPY depth --seconds 30
  qc sim ctl pin-quote 412345678 2.10 2.20     an option's premium, to walk a trailing stop
  qc sim ctl orders --json                     every order at the broker (count duplicates by orderRef)
  qc sim ctl restart-gateway --down 3          order ids of finished orders are reissued afterwards
  qc sim ctl channel-fail telegram 3 --status 429 --retry-after 30
  qc sim ctl channel-timeout webhook --target premium --seconds 20   delivered, answered too late
  qc sim ctl channels --json                   what Telegram, X and the webhooks received (count duplicates)
"""
CHANNELS = ("telegram", "x", "webhook")


@click.group("sim", invoke_without_command=True, epilog=EPILOG)
@click.option("--ib-port", type=click.IntRange(0, 65535), default=4002, show_default=True,
              help="IB API port (0: any free port).")
@click.option("--av-port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Alpha Vantage HTTP port.")
@click.option("--ctl-port", type=click.IntRange(0, 65535), default=8766, show_default=True,
              help="Fault-injection control port.")
@click.option("--channels-port", type=click.IntRange(0, 65535), default=8767, show_default=True,
              help="Telegram, X and webhook stand-ins (HTTP); the default falls back to a free port if taken.")
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same market.")
@click.option("--symbols", metavar="SYM,SYM", help="Underlyings (default: QC_SYMBOLS).")
@click.option("--speed", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Simulated seconds per real second.")
@click.option("--start", metavar="'YYYY-MM-DD HH:MM'", help="Simulated start, New York time, inside a session.")
@click.option("--depth-rate", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="L2 book updates per second per symbol.")
@click.option("--av-rpm", type=click.IntRange(min=1), default=75, show_default=True,
              help="Alpha Vantage requests per minute per key before the throttle body.")
@click.option("--depth-limit", type=click.IntRange(min=1), default=3, show_default=True,
              help="Simultaneous L2 depth subscriptions per client before error 309 (IB's default is 3; "
                   "accounts with more market-data lines get more).")
@click.pass_context
def command(ctx: click.Context, ib_port: int, av_port: int, ctl_port: int, channels_port: int, seed: int,
            symbols: str | None, speed: float, start: str | None, depth_rate: float, av_rpm: int,
            depth_limit: int) -> None:
    """Run a simulated market: IB Gateway (API v178), Alpha Vantage and the signal channels, loopback only."""
    if ctx.invoked_subcommand is not None:
        return
    from qc.runtime.worker import install_signal_handlers
    from qc.sim.market.timeline import parse_start
    from qc.sim.runtime import SimConfig, Simulator  # numpy, pandas: only when the simulator runs

    settings: Settings = ctx.obj
    output.log_to_file(settings, "sim")
    config = SimConfig(
        symbols=parse_symbols(symbols, "--symbols") if symbols else settings.symbols, seed=seed, speed=speed,
        start=parse_start(start) if start else None, ib_port=ib_port, av_port=av_port, ctl_port=ctl_port,
        channels_port=channels_port,
        channels_port_fallback=ctx.get_parameter_source("channels_port") == click.core.ParameterSource.DEFAULT,
        depth_rate_hz=depth_rate, av_rpm=av_rpm, depth_limit=depth_limit)
    store = _anchor_store(settings)
    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        simulator = Simulator(config, store, real_now=clock.SystemClock().now())
        simulator.run(stop, announce=click.echo)
    except OSError as exc:
        raise QcError(f"cannot listen on loopback: {exc}",
                      "pick free ports with --ib-port/--av-port/--ctl-port/--channels-port") from None


def _anchor_store(settings: Settings) -> Store | None:
    """Where to publish the clock anchor: only a Redis given explicitly (QC_REDIS_URL or --redis-url).

    Without one the simulator publishes nothing: the default port may be another stack's Redis, and a
    simulator must never write its clock where it was not sent. (`qc up` passes its Redis explicitly.)
    """
    from qc.runtime.store import connect

    if not settings.redis_url:
        click.echo("no QC_REDIS_URL: the clock anchor is not published (workers keep their own clock)", err=True)
        return None
    store = connect(settings)
    try:
        store.ping()
    except StoreUnavailable as exc:
        click.echo(f"warning: {exc.message}; the clock anchor is published once it is back", err=True)
    return store


@command.group("ctl")
@click.option("--ctl-port", type=click.IntRange(1, 65535), default=8766, show_default=True,
              help="The simulator's control port.")
@click.pass_context
def ctl(ctx: click.Context, ctl_port: int) -> None:
    """Inject a fault into a running `qc sim`, or look at its broker (orders, positions, executions) or
    at what its signal channels received (channels)."""
    ctx.meta["qc.ctl_port"] = ctl_port


def _send(ctx: click.Context, fault: str, **args: Any) -> None:
    from qc.sim.control import send_fault

    reply = send_fault(ctx.meta["qc.ctl_port"], fault, **args)
    click.echo(json.dumps(reply))


@ctl.command("stats")
@click.pass_context
def stats(ctx: click.Context) -> None:
    """Print the simulator's counters as JSON."""
    from qc.sim.control import fetch_stats

    output.emit_json(fetch_stats(ctx.meta["qc.ctl_port"]))


@ctl.command("drop-sockets")
@click.pass_context
def drop_sockets(ctx: click.Context) -> None:
    """Close every IB API socket now."""
    _send(ctx, "drop_sockets")


@ctl.command("refuse")
@click.argument("seconds", type=click.FloatRange(min=0))
@click.pass_context
def refuse(ctx: click.Context, seconds: float) -> None:
    """Refuse IB API connections for SECONDS."""
    _send(ctx, "refuse", seconds=seconds)


@ctl.command("farm-flap")
@click.argument("seconds", type=click.FloatRange(min=0))
@click.pass_context
def farm_flap(ctx: click.Context, seconds: float) -> None:
    """Market-data farm broken (2103/2105) for SECONDS, then OK again (2104/2106)."""
    _send(ctx, "farm_flap", seconds=seconds)


@ctl.command("silence")
@click.argument("symbol")
@click.argument("feed", type=click.Choice(["depth", "bars", "ticks", "quotes"]))
@click.option("--seconds", type=click.FloatRange(min=0), help="How long (default: until restarted).")
@click.pass_context
def silence(ctx: click.Context, symbol: str, feed: str, seconds: float | None) -> None:
    """Stop one feed of SYMBOL while its subscription stays open."""
    _send(ctx, "silence", symbol=symbol.upper(), feed=feed, seconds=seconds)


@ctl.command("connectivity-lost")
@click.argument("seconds", type=click.FloatRange(min=0))
@click.option("--data-lost/--data-kept", default=True, show_default=True,
              help="Restore with 1101 (resubscribe) or 1102 (data maintained).")
@click.pass_context
def connectivity_lost(ctx: click.Context, seconds: float, data_lost: bool) -> None:
    """Error 1100 now, then 1101 or 1102 after SECONDS."""
    _send(ctx, "connectivity_lost", seconds=seconds, data_lost=data_lost)


@ctl.command("delay-end-markers")
@click.option("--seconds", type=click.FloatRange(min=0), help="Delay; omit to withhold them.")
@click.pass_context
def delay_end_markers(ctx: click.Context, seconds: float | None) -> None:
    """Delay or withhold the startup-sync end markers (positionEnd, openOrderEnd, …)."""
    _send(ctx, "delay_end_markers", seconds=seconds)


@ctl.command("reject-next")
@click.argument("reason", default="simulated reject")
@click.pass_context
def reject_next(ctx: click.Context, reason: str) -> None:
    """Reject the next order with error 201."""
    _send(ctx, "reject_next", reason=reason)


@ctl.command("partial-next")
@click.argument("fraction", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True))
@click.pass_context
def partial_next(ctx: click.Context, fraction: float) -> None:
    """Fill the next order partially."""
    _send(ctx, "partial_next", fraction=fraction)


@ctl.command("av-fail")
@click.argument("n", type=click.IntRange(min=1), default=1)
@click.option("--status", type=click.IntRange(400, 599), default=503, show_default=True)
@click.pass_context
def av_fail(ctx: click.Context, n: int, status: int) -> None:
    """Answer the next N Alpha Vantage requests with an HTTP error."""
    _send(ctx, "av_fail", n=n, status=status)


@ctl.command("av-malformed")
@click.argument("n", type=click.IntRange(min=1), default=1)
@click.pass_context
def av_malformed(ctx: click.Context, n: int) -> None:
    """Serve the next N Alpha Vantage bodies as broken JSON."""
    _send(ctx, "av_malformed", n=n)


@ctl.command("jump")
@click.argument("symbol")
@click.argument("pct", type=click.FloatRange(min=-50, max=50, min_open=True, max_open=True))
@click.pass_context
def jump(ctx: click.Context, symbol: str, pct: float) -> None:
    """Gap SYMBOL's book by PCT percent at once (e.g. -1.2): spot crosses zero gamma or a wall between readings."""
    _send(ctx, "jump", symbol=symbol.upper(), pct=pct)


@ctl.command("informed-flow")
@click.argument("symbol")
@click.argument("seconds", type=click.FloatRange(min=1))
@click.option("--direction", type=click.Choice(["buy", "sell"]), default="buy", show_default=True)
@click.pass_context
def informed_flow(ctx: click.Context, symbol: str, seconds: float, direction: str) -> None:
    """Start an informed-flow burst on SYMBOL now (VPIN should rise)."""
    _send(ctx, "informed_flow", symbol=symbol.upper(), seconds=seconds, direction=direction)



@ctl.command("restart-gateway")
@click.option("--down", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds the gateway refuses connections before it is back.")
@click.pass_context
def restart_gateway(ctx: click.Context, down: float) -> None:
    """Gateway restart: drop every socket, refuse connections, roll nextValidId back (LEAN-IB#242).

    \b
    Afterwards a client's nextValidId is 1 + its highest still-working order id (1 if none): ids of
    its filled, cancelled and rejected orders are handed out again and accepted as new orders.
    """
    _send(ctx, "restart_gateway", down=down)


def _market_key(text: str) -> int | str:
    """An option conId (digits) or a stock symbol (letters)."""
    key = text.strip()
    if key.isdigit():
        return int(key)
    if key.replace(".", "").isalpha() and len(key) <= 10:
        return key.upper()
    raise click.BadParameter(f"{text!r} is neither a conId (digits) nor a stock symbol", param_hint="KEY")


@ctl.command("pin-quote")
@click.argument("key")
@click.argument("bid", type=click.FloatRange(min=0))
@click.argument("ask", type=click.FloatRange(min=0))
@click.option("--last", type=click.FloatRange(min=0), help="Last trade (default: the mid).")
@click.pass_context
def pin_quote(ctx: click.Context, key: str, bid: float, ask: float, last: float | None) -> None:
    """Pin KEY (an option conId or a stock symbol) to BID/ASK until `unpin`.

    \b
    The broker matches and marks at the pinned quote; an option's market-data subscribers see it
    too. Walk an option's premium up and down with repeated pins to drive trailing stops.
    """
    parsed = _market_key(key)
    if bid > ask:
        raise click.BadParameter(f"bid {bid:g} is above ask {ask:g}", param_hint="BID")
    _send(ctx, "pin_quote", key=parsed, bid=bid, ask=ask, last=last)


@ctl.command("unpin")
@click.argument("key")
@click.pass_context
def unpin(ctx: click.Context, key: str) -> None:
    """Return KEY (an option conId or a stock symbol) to the model's quotes."""
    _send(ctx, "unpin", key=_market_key(key))


@ctl.command("settle-now")
@click.pass_context
def settle_now(ctx: click.Context) -> None:
    """Settle today's expiring option positions now, at the underlyings' current prices.

    \b
    What the session close does: out of the money (or in by under $0.01) expires worthless; in the
    money by $0.01 or more is exercised (long) or assigned (short) at the strike.
    """
    _send(ctx, "settle_now")


@ctl.command("channel-fail")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("n", type=click.IntRange(min=1), default=1)
@click.option("--status", type=click.IntRange(400, 599), default=503, show_default=True,
              help="429, 500, 502, 503; 403 (telegram: bot blocked), 410 (webhook: gone).")
@click.option("--target", help="Only requests for this chat id, hook name or X user (as `channels` shows it).")
@click.option("--retry-after", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Simulated seconds a 429 asks the sender to wait.")
@click.pass_context
def channel_fail(ctx: click.Context, channel: str, n: int, status: int, target: str | None,
                 retry_after: float) -> None:
    """Answer the next N requests to CHANNEL with an HTTP error, in the channel's own body."""
    _send(ctx, "channel_fail", channel=channel, n=n, status=status, target=target, retry_after=retry_after)


@ctl.command("channel-timeout")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("n", type=click.IntRange(min=1), default=1)
@click.option("--target", help="Only requests for this chat id, hook name or X user (as `channels` shows it).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Real seconds each answer is held (longer than the sender's timeout).")
@click.pass_context
def channel_timeout(ctx: click.Context, channel: str, n: int, target: str | None, seconds: float) -> None:
    """Deliver the next N requests to CHANNEL as usual but answer too late: sent, and the sender timed out."""
    _send(ctx, "channel_timeout", channel=channel, n=n, target=target, seconds=seconds)


@ctl.command("chat-not-found")
@click.argument("chat")
@click.pass_context
def chat_not_found(ctx: click.Context, chat: str) -> None:
    """Make the simulated Telegram answer 400 "chat not found" for CHAT (an id or @username)."""
    _send(ctx, "chat_not_found", chat=chat)


@ctl.command("channel-secret")
@click.argument("name")
@click.argument("secret")
@click.pass_context
def channel_secret(ctx: click.Context, name: str, secret: str) -> None:
    """Check Standard Webhooks signatures on /hooks/NAME with SECRET (whsec_…); a bad one gets 401."""
    _send(ctx, "channel_secret", name=name, secret=secret)


@ctl.command("channels-clear")
@click.pass_context
def channels_clear(ctx: click.Context) -> None:
    """Remove every channel fault switch and not-found chat (webhook secrets stay)."""
    _send(ctx, "channels_clear")


ORDER_COLUMNS = ("clientId", "orderId", "permId", "orderRef", "status", "action", "totalQuantity", "filled",
                 "orderType", "lmtPrice", "auxPrice", "trailingPercent", "trailStopPrice", "parentPermId",
                 "ocaGroup", "conId", "symbol", "account")
POSITION_COLUMNS = ("account", "conId", "symbol", "secType", "expiry", "strike", "right", "qty", "avgCost")
EXECUTION_COLUMNS = ("execId", "orderId", "permId", "orderRef", "conId", "side", "shares", "price", "time")
CHANNEL_COLUMNS = ("channel", "requests", "accepted", "refused", "timeouts")


def _query(ctx: click.Context, name: str, as_json: bool, columns: tuple[str, ...]) -> None:
    from qc.sim.control import fetch_query

    rows = fetch_query(ctx.meta["qc.ctl_port"], name)
    if as_json:
        output.emit_json({name: rows})
    else:
        output.emit_table([["" if r.get(c) is None else r.get(c) for c in columns] for r in rows], columns,
                          title=f"{len(rows)} {name}")


@ctl.command("orders")
@click.option("--json", "as_json", is_flag=True, help="All fields as JSON.")
@click.pass_context
def orders(ctx: click.Context, as_json: bool) -> None:
    """Every order the simulated broker knows: all clients, all states (count duplicates by orderRef)."""
    _query(ctx, "orders", as_json, ORDER_COLUMNS)


@ctl.command("positions")
@click.option("--json", "as_json", is_flag=True, help="All fields as JSON.")
@click.pass_context
def positions(ctx: click.Context, as_json: bool) -> None:
    """Every account's positions at the simulated broker."""
    _query(ctx, "positions", as_json, POSITION_COLUMNS)


@ctl.command("executions")
@click.option("--json", "as_json", is_flag=True, help="All fields as JSON.")
@click.pass_context
def executions(ctx: click.Context, as_json: bool) -> None:
    """Every execution since the simulator started (settlements have orderId 0, permId 0, no orderRef)."""
    _query(ctx, "executions", as_json, EXECUTION_COLUMNS)


@ctl.command("channels")
@click.option("--json", "as_json", is_flag=True, help="Everything: counters, limits, dedupe view, every request.")
@click.pass_context
def channels(ctx: click.Context, as_json: bool) -> None:
    """What the simulated Telegram, X and webhook endpoints received, accepted and refused."""
    _query(ctx, "channels", as_json, CHANNEL_COLUMNS)
