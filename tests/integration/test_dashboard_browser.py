"""The trading desk in a real headless Chromium, against `qc up` on the simulator (issue 17's proof).

One stack and one browser for the module: every panel shows the numbers Redis holds, a new signal
appears without a reload, a silenced feed greys its panel (and it comes back), the halt button asks
for confirmation and the operator token and latches HALTED in Redis, a dashboard bound off loopback
refuses a browser without its token, and no page logs a console error. A screenshot of the page after
each test is written to ``var/test-artifacts/dashboard/`` (``QC_TEST_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from qc.analytics import report as gex_report
from qc.analytics.codec import Vpin
from qc.core import clock, keys
from qc.core.codec import Absent
from qc.execute import report as execute_report
from qc.ingest.codec import Book, OptionChain
from qc.risk.cycle import latches
from qc.runtime.codec import SimClockAnchor
from qc.signals.codec import Signal, new_id
from qc.signals.cycle.publish import Publisher
from qc.signals.model import Contract, Quote

from .conftest import eventually, free_port
from .dashboard_harness import ARTIFACTS, CHROMIUM_FLAGS, OPERATOR_TOKEN, DeskStack, chromium_path, desk_stack
from .stream_harness import stop_process

pytestmark = pytest.mark.timeout(900)
SHOTS = ARTIFACTS / "dashboard"
ACCOUNT = "default"
SYMBOLS = ("SPY", "QQQ", "IWM")


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskStack]:
    with desk_stack(tmp_path_factory.mktemp("desk")) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page and every console error or uncaught exception it produced."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", self._uncaught)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _uncaught(self, error: Error) -> None:
        self.errors.append(f"pageerror: {error}")


@pytest.fixture
def watched(browser: Browser, desk: DeskStack, request: pytest.FixtureRequest) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1680, "height": 1050})
    w = Watched(context.new_page())
    try:
        yield w
        SHOTS.mkdir(parents=True, exist_ok=True)
        w.page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
        assert not w.errors, w.errors
    finally:
        context.close()


def value_of(page: Page, panel: str, field: str) -> str | None:
    return page.get_attribute(f'[data-panel="{panel}"] [data-field="{field}"]', "data-value", timeout=5000)


def agrees(page: Page, panel: str, field: str, truth: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """The page's ``data-value`` equals Redis's value, read before and after it (both the same: it held still)."""
    seen: list[tuple[Any, str | None, Any]] = []

    def same() -> bool:
        before, shown, after = truth(), value_of(page, panel, field), truth()
        seen.append((before, shown, after))
        if before != after or shown in (None, "") or before is None:
            return False
        if isinstance(before, float):
            return math.isclose(float(shown), before, rel_tol=1e-9, abs_tol=1e-9)
        return str(shown) == str(before)

    try:
        eventually(same, timeout_s=timeout_s, every_s=0.25)
    except AssertionError:
        raise AssertionError(f"{panel} {field}: (redis before, page, redis after) {seen[-3:]}") from None
    return seen[-1][0]


def opened(w: Watched, desk: DeskStack) -> Page:
    w.page.goto(desk.url)
    w.page.wait_for_selector('[data-panel="symbol:SPY"] [data-field="zero_gamma"][data-value]', timeout=30_000)
    return w.page


def sim_now(desk: DeskStack) -> datetime:
    """qc's clock: the simulator's, from its anchor in Redis."""
    key = keys.sim_clock()
    anchor = SimClockAnchor.from_redis(desk.store.hgetall(key), key=key.name)
    assert not isinstance(anchor, Absent), anchor
    return datetime.fromtimestamp(anchor.anchor.sim_at(clock.wall_epoch()), timezone.utc)


def gex_field(desk: DeskStack, symbol: str, name: str) -> float | None:
    now = sim_now(desk)
    got = gex_report.load(desk.store, symbol, None, now).fields.get(name)
    return None if got is None else float(got)


def test_every_panel_shows_what_redis_holds(watched: Watched, desk: DeskStack) -> None:
    page = opened(watched, desk)
    for sym in SYMBOLS:
        panel = f"symbol:{sym}"
        agrees(page, panel, "zero_gamma", lambda s=sym: gex_field(desk, s, "zero_gamma"))  # type: ignore[misc]
        agrees(page, panel, "net_gex", lambda s=sym: gex_field(desk, s, "total"))  # type: ignore[misc]

        def rows(s: str = sym) -> int | None:
            chain = OptionChain.from_redis(desk.client.get(keys.option_chain(s).name), key=s)
            return None if isinstance(chain, Absent) else len(chain.rows)

        agrees(page, panel, "chain_rows", rows)

    def vpin() -> float | None:
        got = Vpin.from_redis(desk.store.hgetall(keys.vpin("SPY")), key="vpin")
        return None if isinstance(got, Absent) or got.value is None else got.value

    agrees(page, "symbol:SPY", "vpin", vpin)
    agrees(page, "risk", "trading_state", lambda: trading_state(desk))
    agrees(page, "trading", "positions_count",
           lambda: len(execute_report.positions(desk.store, ACCOUNT, sim_now(desk), include_flat=False).lines))
    agrees(page, "health", "executor_role",
           lambda: execute_report.executor_status(desk.store, ACCOUNT)["status"].get("role"))

    def book_levels() -> int | None:
        book = Book.from_redis(desk.store.hgetall(keys.book("SPY")), key="book")
        return None if isinstance(book, Absent) else len(book.bids) + len(book.asks)

    agrees(page, "symbol:SPY", "book_levels", book_levels)
    assert page.locator('[data-panel="symbol:SPY"] [data-row="0"] [data-field="bid_price"]').count() == 1
    for panel in (*(f"symbol:{s}" for s in SYMBOLS), "signals", "trading", "risk", "health"):
        assert page.locator(f'[data-panel="{panel}"]').count() == 1, panel
    for chart in ("strikes", "profile"):  # uPlot drew a canvas for each chart of each symbol
        assert page.locator(f'[data-chart="{chart}"] canvas').count() >= len(SYMBOLS), chart


def trading_state(desk: DeskStack) -> str:
    latch = latches.load(desk.store, ACCOUNT).get(latches.ACCOUNT_SCOPE)
    return "ACTIVE" if latch is None else latch.state.name


def a_signal(desk: DeskStack) -> Signal:
    """A 1DTE call near the money, built from the chain in Redis as `qc signals` would build one."""
    chain = OptionChain.from_redis(desk.client.get(keys.option_chain("SPY").name), key="chain")
    assert isinstance(chain, OptionChain), chain
    now = sim_now(desk)
    later = [e for e in chain.expiries if (e - now.date()).days >= 1]
    rows = [r for r in chain.rows if r.expiry == min(later) and r.right == "C" and r.ask > r.bid > 0.2]
    row = min(rows, key=lambda r: abs(r.strike - chain.spot))
    price = round(row.ask, 2)
    return Signal(
        id=new_id(now), created_at=now, strategy="1dte", contract=Contract("SPY", "OPT", row.expiry, row.strike,
                                                                            row.right, 100, "SMART", "ARCA"),
        side="BUY", direction=1, order_type="LMT", limit=price, take_profit=round(price * 1.5, 2),
        stop=max(0.01, round(price * 0.75, 2)), time_stop=now + timedelta(minutes=60), score=0.61,
        threshold=0.3, mode="neutral", size_multiplier=1.0,
        quote=Quote(row.bid, row.ask, row.mark, row.delta, row.open_interest, row.volume, 1.0),
        contributions=(), factor_inputs={}, gates=(), fingerprint=f"browser-test-{now.timestamp()}",
        lineage={"source": "browser test"})


def test_a_new_signal_appears_without_a_reload(watched: Watched, desk: DeskStack) -> None:
    page = opened(watched, desk)
    page.evaluate("window.__sameDocument = true")
    signal_ = a_signal(desk)
    claim = Publisher(desk.store, 100).claim(signal_, dwell_s=60, cooldown_s=0)
    assert claim.result == "emitted", claim
    row = f'[data-panel="signals"] [data-row="{signal_.id}"]'
    page.wait_for_selector(row, timeout=15_000)
    assert page.evaluate("window.__sameDocument === true")  # pushed into the open page, not reloaded
    assert page.text_content(f'{row} [data-field="symbol"]') == "SPY"
    assert float(page.get_attribute(f'{row} [data-field="score"]', "data-value") or "nan") == pytest.approx(0.61)
    page.click(row)  # the `explain` detail on click
    page.get_by_text(signal_.id).first.wait_for(timeout=10_000)


def test_a_silenced_feed_turns_grey_and_comes_back(watched: Watched, desk: DeskStack) -> None:
    page = opened(watched, desk)
    iwm, spy = '[data-panel="symbol:IWM"]', '[data-panel="symbol:SPY"]'
    page.wait_for_selector(f"{iwm}:not(.stale)", timeout=30_000)
    ctl = desk.qc("sim", "ctl", "--ctl-port", desk.env["QC_SIM_CTL_PORT"], "silence", "IWM", "quotes",
                  "--seconds", "120")
    assert ctl.returncode == 0, ctl.stderr
    page.wait_for_selector(f"{iwm}.stale", timeout=60_000)
    assert "stale" in (page.text_content(iwm) or "")  # its age is shown, not a fresh zero
    assert page.locator(f"{spy}.stale").count() == 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "stale-iwm.png"), full_page=True)
    page.wait_for_selector(f"{iwm}:not(.stale)", timeout=90_000)


def test_halt_asks_for_confirmation_and_latches_in_redis(watched: Watched, desk: DeskStack) -> None:
    page = opened(watched, desk)
    dialog = "dialog[data-confirm]"
    page.wait_for_selector('[data-action="halt"]:not([disabled])', timeout=15_000)
    page.click('[data-action="halt"]')
    page.wait_for_selector(f"{dialog}[open]", timeout=5000)
    page.click(f"{dialog} [data-confirm-cancel]")  # cancelled: nothing latched
    page.wait_for_selector(f"{dialog}:not([open])", state="attached", timeout=5000)
    assert trading_state(desk) == "ACTIVE"

    page.click('[data-action="halt"]')
    page.fill(f'{dialog} [name="reason"]', "browser test halt")
    page.fill(f'{dialog} [name="operator_token"]', OPERATOR_TOKEN)
    page.click(f"{dialog} [data-confirm-go]")
    eventually(lambda: trading_state(desk) == "HALTED", timeout_s=30)
    page.wait_for_selector('[data-panel="risk"] [data-field="trading_state"][data-value="HALTED"]', timeout=15_000)

    page.click('[data-action="resume"]')
    page.fill(f'{dialog} [name="reason"]', "browser test over")
    page.fill(f'{dialog} [name="operator_token"]', OPERATOR_TOKEN)
    page.click(f"{dialog} [data-confirm-go]")
    eventually(lambda: trading_state(desk) == "ACTIVE", timeout_s=30)
    page.wait_for_selector('[data-panel="risk"] [data-field="trading_state"][data-value="ACTIVE"]', timeout=15_000)


def test_off_loopback_the_page_needs_the_token(browser: Browser, desk: DeskStack) -> None:
    token = "dash-" + "0123456789abcdef"  # a test value
    port = free_port()
    env = {**desk.env, "QC_DASHBOARD_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-m", "qc", "dashboard", "--host", "0.0.0.0", "--port", str(port)],
                            cwd=desk.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/"
    context = browser.new_context()
    try:
        eventually(lambda: _status(base + "healthz") == 401 or proc.poll() is not None, timeout_s=30)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        page = context.new_page()
        refused = page.goto(base)
        assert refused is not None and refused.status == 401
        assert page.locator("[data-panel]").count() == 0
        page = context.new_page()  # watched from its first request: the refused page may still fetch its favicon
        w = Watched(page)
        page.goto(f"{base}?token={token}")  # sets the HttpOnly cookie, then 303 to the page
        assert token not in page.url
        page.wait_for_selector('[data-panel="health"] [data-field="state"][data-value]', timeout=30_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "off-loopback-with-token.png"), full_page=True)
        assert token not in page.content()
        assert not w.errors, w.errors
    finally:
        context.close()
        stop_process(proc)


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0


def test_the_page_fetches_nothing_but_its_own_files(watched: Watched, desk: DeskStack) -> None:
    """Every asset ships in the wheel: no CDN, no download at run time (load time itself is in `make bench`)."""
    requested: list[str] = []
    watched.page.on("request", lambda r: requested.append(r.url))
    opened(watched, desk)
    assert any(u.endswith("uPlot.iife.min.js") for u in requested), requested
    assert all(u.startswith(desk.url) for u in requested), requested
