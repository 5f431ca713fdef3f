"""The dashboard: Redis update → the browser's DOM (target p99 < 500 ms), page load (< 1 s), server CPU.

The whole stack from `qc up` on the simulator (5x speed, three symbols live), the dashboard as `qc up`
starts it, and Debian's Chromium headless through Playwright (``tests.integration.dashboard_harness``).

- **Update → DOM**: ``SIGNALS`` signals are published through `qc signals`' own publisher, one every
  ``EVERY_S``; the time of each is taken when the publish returned (the signal is then in Redis). A
  ``MutationObserver`` in the page stamps the moment its row enters the DOM (``performance.timeOrigin +
  performance.now()``: the same wall clock on the same host).
- **Baseline, same run, same signals**: a bare Server-Sent-Events client in Python (no browser) on
  ``/events``, stamping the first pushed ``signals`` document that names each signal: the server's part.
- **Page load**: ``LOADS`` fresh browser contexts (each a new renderer process), navigation start →
  every panel holding data (each symbol's zero gamma, the signals, trading, risk and health panels'
  first value), stamped by a ``MutationObserver`` in the page; measured after the CPU window, so the
  stack is past its first cycles, with the first page still open.
- **Server CPU**: the dashboard process's user + system time over ``CPU_WINDOW_S`` with one page open
  and three symbols updating, as % of one core (and the browser's renderer beside it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from benchmarks._report import Figure
from qc.core import clock, keys
from qc.runtime.codec import SupervisorChildren
from qc.signals.cycle.publish import Publisher
from tests.integration.dashboard_harness import CHROMIUM_FLAGS, DeskStack, desk_stack
from tests.integration.test_dashboard_browser import a_signal

SIGNALS = 120
EVERY_S = 0.5
LOADS = 10
CPU_WINDOW_S = 60.0
TARGET_P99_MS = 500.0
TARGET_LOAD_S = 1.0
READY = ('[data-panel="symbol:SPY"] [data-field="zero_gamma"][data-value]',
         '[data-panel="symbol:QQQ"] [data-field="zero_gamma"][data-value]',
         '[data-panel="symbol:IWM"] [data-field="zero_gamma"][data-value]',
         '[data-panel="signals"] [data-field="recent_count"][data-value]',
         '[data-panel="trading"] [data-field="positions_count"][data-value]',
         '[data-panel="risk"] [data-field="trading_state"][data-value]',
         '[data-panel="health"] [data-field="state"][data-value]')
READY_HOOK = """
(() => {
  const wanted = %s;
  new MutationObserver((_, observer) => {
    if (wanted.every((sel) => document.querySelector(sel))) {
      window.__ready = performance.now();  // since this navigation started
      observer.disconnect();
    }
  }).observe(document, {childList: true, subtree: true, attributes: true});
})();
"""
OBSERVE = """() => {
  window.__rows = {};
  const root = document.querySelector('[data-panel="signals"]');
  new MutationObserver(() => {
    const t = performance.timeOrigin + performance.now();
    for (const el of root.querySelectorAll('[data-row]')) {
      const id = el.getAttribute('data-row');
      if (!(id in window.__rows)) window.__rows[id] = t;
    }
  }).observe(root, {childList: true, subtree: true});
}"""


class SseWatch:
    """A bare SSE client: the wall time each signal id is first named in a pushed ``signals`` document."""

    def __init__(self, url: str) -> None:
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.response = requests.get(url + "events", stream=True, timeout=(5, 60))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        for chunk in self.response.iter_content(chunk_size=None):  # each chunk as it arrives
            at = clock.wall_epoch()
            if self.stop.is_set():
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.startswith(b"data:"):
                    self._note(json.loads(line[5:]), at)

    def _note(self, event: dict[str, Any], at: float) -> None:
        if event.get("id") == "signals":
            for row in event.get("doc", {}).get("recent", []):
                self.seen.setdefault(str(row.get("id")), at)

    def close(self) -> None:
        self.stop.set()
        self.response.close()


def _percentiles(ms: list[float]) -> tuple[float, float, float]:
    a = np.asarray(ms)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _dashboard_pid(desk: DeskStack) -> int:
    got = SupervisorChildren.from_redis(desk.store.hgetall(keys.supervisor_children()), key="children")
    assert isinstance(got, SupervisorChildren), got
    pid = got.children["dashboard"].pid
    assert pid is not None
    return pid


def _renderers() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"chromium" in cmd and b"--type=renderer" in cmd:
                pids.append(int(entry.name))
    return pids


def page_loads(browser: Browser, url: str) -> list[float]:
    """Navigation start → every ``READY`` selector present, stamped in the page (no round trip in the figure)."""
    took = []
    for _ in range(LOADS):
        context = browser.new_context()
        context.add_init_script(READY_HOOK % json.dumps(list(READY)))
        page = context.new_page()
        page.goto(url, wait_until="commit")
        page.wait_for_selector(READY[-1], timeout=30_000)
        for selector in READY:
            page.wait_for_selector(selector, timeout=30_000)
        took.append(page.evaluate("window.__ready") / 1000.0)
        context.close()
    return took


def update_to_dom(desk: DeskStack, page: Page) -> tuple[list[float], list[float], int]:
    page.evaluate(OBSERVE)
    sse = SseWatch(desk.url)
    publisher = Publisher(desk.store, 100)
    published: dict[str, float] = {}
    try:
        for _ in range(SIGNALS):
            signal = a_signal(desk)
            claim = publisher.claim(signal, dwell_s=60, cooldown_s=0)
            published[signal.id] = clock.wall_epoch()
            assert claim.result == "emitted", claim
            time.sleep(EVERY_S)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(page.evaluate("Object.keys(window.__rows)")) < len(published):
            time.sleep(0.2)
        rows: dict[str, float] = page.evaluate("window.__rows")
    finally:
        sse.close()
    dom = [(rows[i] / 1000.0 - t) * 1000 for i, t in published.items() if i in rows]
    pushed = [(sse.seen[i] - t) * 1000 for i, t in published.items() if i in sse.seen]
    return dom, pushed, len(published) - len(dom)


def cpu_while_live(desk: DeskStack, page: Page) -> tuple[float, float]:
    pid, renderers = _dashboard_pid(desk), _renderers()
    before, r_before, t0 = _cpu_s(pid), sum(map(_cpu_s, renderers)), time.monotonic()
    page.wait_for_timeout(CPU_WINDOW_S * 1000)
    elapsed = time.monotonic() - t0
    return ((_cpu_s(pid) - before) / elapsed * 100, (sum(map(_cpu_s, renderers)) - r_before) / elapsed * 100)


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp, _browser() as browser:
        print("  starting the stack (a minute or two) …", file=sys.stderr, flush=True)
        with desk_stack(Path(tmp)) as desk:
            context = browser.new_context(viewport={"width": 1680, "height": 1050})
            page = context.new_page()
            page.goto(desk.url)
            for selector in READY:
                page.wait_for_selector(selector, timeout=30_000)
            print(f"  server CPU over {CPU_WINDOW_S:g} s …", file=sys.stderr, flush=True)
            server_pct, renderer_pct = cpu_while_live(desk, page)
            print(f"  {LOADS} page loads (a second page beside the first) …", file=sys.stderr, flush=True)
            loads = page_loads(browser, desk.url)
            print(f"  {SIGNALS} signals, one every {EVERY_S:g} s …", file=sys.stderr, flush=True)
            dom, pushed, lost = update_to_dom(desk, page)
            context.close()
    d50, d99, dmax = _percentiles(dom)
    p50, p99, pmax = _percentiles(pushed)
    l50, lmax = float(np.percentile(loads, 50)), max(loads)
    base = f"pushed to a bare SSE client: p50 {p50:.0f} / p99 {p99:.0f} / max {pmax:.0f} ms"
    return [
        Figure(f"Redis update → browser DOM, p50 of {len(dom)} signals", d50, "ms", baseline=base),
        Figure("Redis update → browser DOM, p99", d99, "ms", f"p99 < {TARGET_P99_MS:.0f} ms", base,
               d99 < TARGET_P99_MS),
        Figure("Redis update → browser DOM, max", dmax, "ms", baseline=f"{lost} never shown"),
        Figure(f"page load → every panel showing data, p50 of {LOADS}", l50 * 1000, "ms",
               f"< {TARGET_LOAD_S * 1000:.0f} ms", f"max {lmax * 1000:.0f} ms", l50 < TARGET_LOAD_S),
        Figure("dashboard server CPU, 3 symbols live, one page open", server_pct, "% of a core",
               baseline=f"the browser's renderer: {renderer_pct:.1f} %"),
    ]


class _browser:
    """Chromium for the length of the run (a context manager around Playwright's own)."""

    def __enter__(self) -> Browser:
        path = shutil.which("chromium")
        if path is None:
            raise SystemExit("bench_dashboard: Debian's chromium is not installed: sudo apt-get install chromium")
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        return self.browser

    def __exit__(self, *exc: object) -> None:
        self.browser.close()
        self._pw.stop()


if __name__ == "__main__":
    for f in run():
        print(f)
