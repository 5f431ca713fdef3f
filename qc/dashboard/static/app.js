/* qc desk: renders the panel documents `qc dashboard` pushes over Server-Sent Events.
 *
 * Why it is built this way:
 * - One EventSource ('/events'); each event is {id, doc} for one panel. Documents are coalesced per panel and
 *   rendered once per animation frame, so three symbols updating many times a second cost one render each
 *   per frame at most.
 * - Everything is created once (panels, table rows by key, uPlot charts) and then updated in place: a text
 *   node is written only when its text changed, a chart gets setData only when its data changed.
 * - Freshness: every document says as_of / age_s / stale / stale_after_s. A ticker ages each panel (and
 *   each section) between documents, so a panel whose documents stop arriving greys by itself, and every
 *   panel greys while the stream is down. A missing value is shown as "—", never as 0.
 * - No inline script or handler (CSP script-src 'self'); nothing here logs to the console.
 */
'use strict';

(() => {
  const DASH = '—';
  const NY = 'America/New_York';
  const BOOK_ROWS = 10;
  const TICK_MS = 1000;

  const state = {
    session: null,
    connected: false,
    everConnected: false,
    panels: new Map(),     // id -> panel record
    pending: new Map(),    // id -> latest doc not yet rendered
    scheduled: false,
    es: null,
    retryMs: 1000,
    explainId: null,
  };

  // --- formatting -------------------------------------------------------------------------------

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const has = (v) => v !== null && v !== undefined && v !== '';
  const fixed = (v, d) => (isNum(v) ? v.toFixed(d) : DASH);
  const signed = (v, d) => (isNum(v) ? (v > 0 ? '+' : '') + v.toFixed(d) : DASH);
  const text = (v) => (has(v) ? String(v) : DASH);
  const intText = (v) => (isNum(v) ? Math.round(v).toLocaleString('en-US') : DASH);

  function money(v) {
    if (!isNum(v)) return DASH;
    const digits = Math.abs(v) >= 1000 ? 0 : 2;
    const body = Math.abs(v).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
    return (v < 0 ? '-' : v > 0 ? '+' : '') + body;
  }

  function big(v) {
    if (!isNum(v)) return DASH;
    const a = Math.abs(v);
    const s = v < 0 ? '-' : v > 0 ? '+' : '';
    if (a >= 1e9) return s + (a / 1e9).toFixed(2) + 'B';
    if (a >= 1e6) return s + (a / 1e6).toFixed(2) + 'M';
    if (a >= 1e3) return s + (a / 1e3).toFixed(1) + 'K';
    return s + a.toFixed(0);
  }

  const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumSignificantDigits: 3 });
  const compact = (v) => (isNum(v) ? compactFormat.format(v) : '');

  function ageText(s) {
    if (!isNum(s)) return DASH;
    const n = Math.max(0, Math.round(s));
    if (n < 90) return n + ' s';
    if (n < 5400) return Math.floor(n / 60) + 'm ' + String(n % 60).padStart(2, '0') + 's';
    if (n < 172800) return Math.floor(n / 3600) + 'h ' + String(Math.floor((n % 3600) / 60)).padStart(2, '0') + 'm';
    return Math.floor(n / 86400) + 'd';
  }

  const nyClock = new Intl.DateTimeFormat('en-US', {
    timeZone: NY, hour12: false, hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  function nyTime(iso) {
    if (!has(iso)) return DASH;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? DASH : nyClock.format(d);
  }

  function tone(v) {
    if (!isNum(v) || v === 0) return '';
    return v > 0 ? 'pos' : 'neg';
  }

  // --- small DOM helpers -------------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined) continue;
        if (k === 'class') node.className = v;
        else if (k === 'text') node.textContent = v;
        else node.setAttribute(k, v);
      }
    }
    for (const c of children || []) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    return node;
  }

  function setText(node, value) {
    if (node && node.textContent !== value) node.textContent = value;
  }

  function setClass(node, name, on) {
    if (node && node.classList.contains(name) !== on) node.classList.toggle(name, on);
  }

  function flash(message, kind) {
    const box = document.querySelector('[data-flash]');
    if (!box) return;
    box.textContent = message;
    box.className = 'flash ' + (kind || 'info');
    box.hidden = false;
    clearTimeout(flash.timer);
    if (kind === 'ok') flash.timer = setTimeout(() => { box.hidden = true; }, 20000);
  }

  // --- panel records ------------------------------------------------------------------------------

  function indexPanel(root, id, kind) {
    const rec = {
      id, kind, el: root, doc: null, at: 0,
      fields: new Map(), tables: new Map(), sections: new Map(),
      age: root.querySelector('[data-age]'), missing: root.querySelector('[data-missing]'),
      charts: null, sectionEnv: new Map(),
    };
    for (const node of root.querySelectorAll('[data-field]')) {
      if (node.closest('tbody')) continue;
      const name = node.getAttribute('data-field');
      if (!rec.fields.has(name)) rec.fields.set(name, []);
      rec.fields.get(name).push(node);
    }
    for (const table of root.querySelectorAll('table[data-table]')) {
      rec.tables.set(table.getAttribute('data-table'), table.tBodies[0]);
    }
    for (const node of root.querySelectorAll('[data-section]')) {
      const name = node.getAttribute('data-section');
      if (!rec.sections.has(name)) rec.sections.set(name, []);
      rec.sections.get(name).push(node);
    }
    state.panels.set(id, rec);
    return rec;
  }

  /** Set a scalar: text is the formatted value, data-value the raw number or string ("" when missing). */
  function field(rec, name, value, formatted, cls) {
    const nodes = rec.fields.get(name);
    if (!nodes) return;
    const raw = value === null || value === undefined ? '' : String(value);
    const shown = formatted === undefined ? text(value) : formatted;
    for (const node of nodes) {
      setText(node, shown);
      if (node.getAttribute('data-value') !== raw) node.setAttribute('data-value', raw);
      if (cls !== undefined) {
        const base = node.dataset.baseClass !== undefined ? node.dataset.baseClass : (node.dataset.baseClass = node.className);
        const want = cls ? (base ? base + ' ' + cls : cls) : base;
        if (node.className !== want) node.className = want;
      }
    }
  }

  /** Keyed rows: existing rows are updated in place and reordered; rows no longer present are removed. */
  function rows(tbody, items, keyOf, cellsOf, emptyText) {
    if (!tbody) return;
    const existing = new Map();
    for (const tr of Array.from(tbody.children)) {
      if (tr.hasAttribute('data-row')) existing.set(tr.getAttribute('data-row'), tr);
      else tr.remove();
    }
    const seen = new Set();
    let prev = null;
    for (const item of items) {
      let id = String(keyOf(item));
      while (seen.has(id)) id += '+';
      seen.add(id);
      const cells = cellsOf(item);
      let tr = existing.get(id);
      if (!tr) {
        tr = document.createElement('tr');
        tr.setAttribute('data-row', id);
      }
      while (tr.children.length < cells.length) tr.appendChild(document.createElement('td'));
      while (tr.children.length > cells.length) tr.lastChild.remove();
      cells.forEach((c, i) => cell(tr.children[i], c));
      const next = prev ? prev.nextSibling : tbody.firstChild;
      if (next !== tr) tbody.insertBefore(tr, next);
      prev = tr;
    }
    for (const [id, tr] of existing) if (!seen.has(id)) tr.remove();
    if (!items.length && emptyText) {
      const cols = tbody.parentElement && tbody.parentElement.tHead ? tbody.parentElement.tHead.rows[0].cells.length : 1;
      tbody.appendChild(el('tr', { class: 'empty' }, [el('td', { colspan: String(cols), text: emptyText })]));
    }
  }

  /** A cell: {t: text, f: data-field, v: raw value, c: class, title}. */
  function cell(td, c) {
    setText(td, c.t);
    const cls = c.c || '';
    if (td.className !== cls) td.className = cls;
    if (c.f) {
      if (td.getAttribute('data-field') !== c.f) td.setAttribute('data-field', c.f);
      const raw = c.v === null || c.v === undefined ? '' : String(c.v);
      if (td.getAttribute('data-value') !== raw) td.setAttribute('data-value', raw);
    }
    const title = c.title || '';
    if (td.title !== title) td.title = title;
  }

  const num = (f, v, formatted, extra) => ({ t: formatted, f, v: isNum(v) ? v : '', c: 'n ' + (extra || '') });
  const str = (f, v, extra) => ({ t: text(v), f, v: has(v) ? v : '', c: extra || '' });

  // --- freshness ---------------------------------------------------------------------------------

  /** Age now (seconds) of an envelope received at `at` (performance.now()), and whether it is stale. */
  function freshness(env, at, nowPerf) {
    if (!env) return { age: null, stale: true };
    const age = isNum(env.age_s) ? env.age_s + (nowPerf - at) / 1000 : null;
    const stale = !state.connected || env.stale === true || age === null ||
      (isNum(env.stale_after_s) && age > env.stale_after_s);
    return { age, stale };
  }

  function badge(node, env, fr) {
    if (!node) return;
    let shown;
    if (!state.connected) shown = state.everConnected ? 'disconnected' : 'connecting';
    else if (!env) shown = 'waiting';
    else if (fr.age === null) shown = env.missing ? 'no data' : 'stale';
    else shown = (fr.stale ? 'stale ' : '') + ageText(fr.age);
    setText(node, shown);
    setClass(node, 'stale-text', fr.stale);
    const why = env ? (env.missing || env.stale_reason || '') : '';
    if (node.title !== why) node.title = why;
  }

  function applyFreshness(rec, nowPerf) {
    const fr = freshness(rec.doc, rec.at, nowPerf);
    setClass(rec.el, 'stale', fr.stale);
    setClass(rec.el, 'disconnected', !state.connected);
    badge(rec.age, rec.doc, fr);
    for (const [name, nodes] of rec.sections) {
      const env = rec.sectionEnv.get(name);
      if (env === undefined) continue;
      const sf = freshness(env, rec.at, nowPerf);
      for (const node of nodes) {
        setClass(node, 'stale', sf.stale);
        badge(node.querySelector(':scope > .group-head [data-section-age]'), env, sf);
      }
    }
  }

  function tick() {
    const now = performance.now();
    for (const rec of state.panels.values()) applyFreshness(rec, now);
  }

  function setMissing(rec, doc) {
    if (!rec.missing) return;
    // nothing to show, or nothing fresh at all: say why (what to start), not just "stale"
    const why = !doc ? '' : doc.missing || (doc.as_of === null && doc.stale_reason) || '';
    setText(rec.missing, why);
    if (rec.missing.hidden !== !why) rec.missing.hidden = !why;
  }

  // --- charts --------------------------------------------------------------------------------------

  const COLORS = {
    spot: '#e6edf3', zg: '#d29922', cw: '#3fb950', pw: '#f85149', pos: '#2ea043', neg: '#da3633',
    line: '#58a6ff', vpin: '#d2a8ff', imb: '#39c5cf', axis: '#8b949e', grid: '#21262d',
  };

  function axis(extra) {
    return Object.assign({
      stroke: COLORS.axis, grid: { stroke: COLORS.grid, width: 1 }, ticks: { stroke: COLORS.grid, width: 1 },
      font: '10px system-ui, sans-serif', size: 40,
    }, extra || {});
  }

  /** Vertical lines at spot, zero gamma and the walls (and a zero line), drawn after each redraw. */
  function markers(getter) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          const pr = uPlot.pxRatio;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          const y0 = u.valToPos(0, 'y', true);
          if (isNum(y0) && y0 >= top && y0 <= top + height) {
            ctx.strokeStyle = '#484f58';
            ctx.lineWidth = pr;
            ctx.beginPath(); ctx.moveTo(left, y0); ctx.lineTo(left + width, y0); ctx.stroke();
          }
          ctx.font = `${10 * pr}px system-ui, sans-serif`;
          getter().forEach((m, i) => {
            if (!isNum(m.x)) return;
            const x = Math.round(u.valToPos(m.x, 'x', true));
            if (x < left || x > left + width) return;
            ctx.strokeStyle = m.color;
            ctx.fillStyle = m.color;
            ctx.lineWidth = 1.5 * pr;
            ctx.setLineDash(m.dash ? m.dash.map((d) => d * pr) : []);
            ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
            ctx.fillText(m.label, Math.min(x + 3 * pr, left + width - 40 * pr), top + (10 + 11 * i) * pr);
          });
          ctx.restore();
        }],
      },
    };
  }

  function chartWidth(host) {
    const w = host.clientWidth || (host.parentElement && host.parentElement.clientWidth) || 400;
    return Math.max(200, Math.floor(w));
  }

  function makeCharts(rec) {
    if (typeof uPlot === 'undefined') return null;
    const hosts = {
      strikes: rec.el.querySelector('[data-chart="strikes"]'),
      profile: rec.el.querySelector('[data-chart="profile"]'),
      series: rec.el.querySelector('[data-chart="series"]'),
    };
    const marks = { list: [] };
    const getMarks = () => marks.list;
    const H = 150;
    const bars = uPlot.paths.bars({ size: [0.8, 24] });
    const strikes = new uPlot({
      width: chartWidth(hosts.strikes), height: H, legend: { show: false }, cursor: { points: { show: false } },
      scales: { x: { time: false }, y: { auto: true } },
      axes: [axis({ size: 28 }), axis({ size: 44, values: (u, vals) => vals.map(compact) })],
      series: [{}, { label: 'net +', fill: COLORS.pos, stroke: COLORS.pos, paths: bars, points: { show: false } },
        { label: 'net −', fill: COLORS.neg, stroke: COLORS.neg, paths: bars, points: { show: false } }],
      plugins: [markers(getMarks)],
    }, [[], [], []], hosts.strikes);
    const profile = new uPlot({
      width: chartWidth(hosts.profile), height: H, legend: { show: false }, cursor: { points: { show: false } },
      scales: { x: { time: false }, y: { auto: true } },
      axes: [axis({ size: 28 }), axis({ size: 44, values: (u, vals) => vals.map(compact) })],
      series: [{}, { label: 'GEX', stroke: COLORS.line, width: 1.5, fill: 'rgba(88,166,255,0.10)', points: { show: false } }],
      plugins: [markers(getMarks)],
    }, [[], []], hosts.profile);
    const series = new uPlot({
      width: chartWidth(hosts.series), height: 120, legend: { show: false }, cursor: { points: { show: false } },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), NY),
      scales: { x: { time: true }, vpin: { range: [0, 1] }, imb: { range: [-1, 1] } },
      axes: [axis({ size: 28 }), axis({ scale: 'vpin', size: 34 }),
        axis({ scale: 'imb', side: 1, size: 34, grid: { show: false } })],
      series: [{}, { label: 'VPIN', scale: 'vpin', stroke: COLORS.vpin, width: 1.5, spanGaps: false, points: { show: false } },
        { label: 'imbalance', scale: 'imb', stroke: COLORS.imb, width: 1, spanGaps: false, points: { show: false } }],
    }, [[], [], []], hosts.series);
    const charts = { strikes, profile, series, marks, sig: { strikes: '', profile: '', series: '', marks: '' }, hosts };
    if (typeof ResizeObserver !== 'undefined') {
      let pending = 0;
      const ro = new ResizeObserver(() => {
        cancelAnimationFrame(pending);
        pending = requestAnimationFrame(() => {
          for (const name of ['strikes', 'profile', 'series']) {
            const w = chartWidth(hosts[name]);
            if (w !== charts[name].width) charts[name].setSize({ width: w, height: charts[name].height });
          }
        });
      });
      ro.observe(rec.el);
    }
    return charts;
  }

  /** The strikes worth showing: around spot, widened to keep zero gamma and both walls in view. */
  function strikeWindow(byStrike, gex) {
    const xs = byStrike.strike;
    const spot = gex && isNum(gex.spot) ? gex.spot : null;
    if (spot === null) return [0, xs.length];
    let lo = spot * 0.94;
    let hi = spot * 1.06;
    for (const k of ['zero_gamma', 'call_wall', 'put_wall']) {
      const v = gex[k];
      if (isNum(v) && Math.abs(v / spot - 1) < 0.15) { lo = Math.min(lo, v * 0.99); hi = Math.max(hi, v * 1.01); }
    }
    let a = 0;
    while (a < xs.length && xs[a] < lo) a += 1;
    let b = xs.length;
    while (b > a && xs[b - 1] > hi) b -= 1;
    return b - a >= 3 ? [a, b] : [0, xs.length];
  }

  /** The series with a null sample where the dashboard was not sampling (nobody watched), so no line bridges it. */
  function withGaps(se) {
    const t = se.t;
    const gap = Math.max(30, 5 * (isNum(se.step_s) ? se.step_s : 1));
    let breaks = 0;
    for (let i = 1; i < t.length; i += 1) if (t[i] - t[i - 1] > gap) breaks += 1;
    if (!breaks) return [t, se.vpin, se.imbalance];
    const T = [];
    const V = [];
    const M = [];
    for (let i = 0; i < t.length; i += 1) {
      if (i && t[i] - t[i - 1] > gap) { T.push(t[i - 1] + 0.001); V.push(null); M.push(null); }
      T.push(t[i]); V.push(se.vpin[i]); M.push(se.imbalance[i]);
    }
    return [T, V, M];
  }

  function updateCharts(rec, doc) {
    if (!rec.charts) rec.charts = makeCharts(rec);
    const ch = rec.charts;
    if (!ch) return;
    const gex = doc.gex && !doc.gex.missing ? doc.gex : null;
    const marksSig = gex ? [gex.spot, gex.zero_gamma, gex.call_wall, gex.put_wall].join('|') : '';
    const marksChanged = marksSig !== ch.sig.marks;
    if (marksChanged) {
      ch.sig.marks = marksSig;
      ch.marks.list = gex ? [
        { x: gex.spot, color: COLORS.spot, label: 'spot' },
        { x: gex.zero_gamma, color: COLORS.zg, label: 'zero γ', dash: [4, 3] },
        { x: gex.call_wall, color: COLORS.cw, label: 'call wall', dash: [2, 2] },
        { x: gex.put_wall, color: COLORS.pw, label: 'put wall', dash: [2, 2] },
      ] : [];
    }
    const bs = doc.by_strike;
    const sSig = bs && bs.strike ? `${gex ? gex.as_of : ''}|${bs.strike.length}|${bs.strike[0]}|${marksSig}` : 'none';
    if (sSig !== ch.sig.strikes) {
      ch.sig.strikes = sSig;
      if (bs && bs.strike && bs.strike.length) {
        const [a, b] = strikeWindow(bs, gex);
        const xs = bs.strike.slice(a, b);
        const net = bs.net.slice(a, b);
        ch.strikes.setData([xs, net.map((v) => (isNum(v) && v > 0 ? v : null)), net.map((v) => (isNum(v) && v < 0 ? v : null))]);
      } else {
        ch.strikes.setData([[], [], []]);
      }
    } else if (marksChanged) {
      ch.strikes.redraw(false, false);
    }
    const pf = doc.profile;
    const pSig = pf && pf.levels ? `${gex ? gex.as_of : ''}|${pf.levels.length}|${pf.levels[0]}` : 'none';
    if (pSig !== ch.sig.profile) {
      ch.sig.profile = pSig;
      ch.profile.setData(pf && pf.levels && pf.levels.length ? [pf.levels, pf.gex] : [[], []]);
    } else if (marksChanged) {
      ch.profile.redraw(false, false);
    }
    const se = doc.series;
    const n = se && se.t ? se.t.length : 0;
    const tSig = n ? `${n}|${se.t[0]}|${se.t[n - 1]}|${se.vpin[n - 1]}|${se.imbalance[n - 1]}` : 'none';
    if (tSig !== ch.sig.series) {
      ch.sig.series = tSig;
      ch.series.setData(n ? withGaps(se) : [[], [], []]);
    }
  }

  // --- symbol panels -------------------------------------------------------------------------------

  function ensureSymbolPanel(symbol) {
    const id = 'symbol:' + symbol;
    if (state.panels.has(id)) return state.panels.get(id);
    const tpl = document.getElementById('symbol-panel');
    const host = document.querySelector('[data-symbols]');
    if (!tpl || !host) return null;
    const root = tpl.content.firstElementChild.cloneNode(true);
    root.setAttribute('data-panel', id);
    setText(root.querySelector('[data-symbol-name]'), symbol);
    const tbody = root.querySelector('table[data-table="book"] tbody');
    for (let i = 0; i < BOOK_ROWS; i += 1) {
      const tr = el('tr', { 'data-row': String(i) });
      for (let j = 0; j < 6; j += 1) tr.appendChild(el('td', { class: j === 0 || j === 5 ? 'venue' : 'n' }));
      tbody.appendChild(tr);
    }
    host.appendChild(root);
    const rec = indexPanel(root, id, 'symbol');
    rec.charts = makeCharts(rec);
    applyFreshness(rec, performance.now());
    return rec;
  }

  function bookRows(rec, book) {
    const tbody = rec.tables.get('book');
    if (!tbody) return;
    const bids = book && !book.missing ? book.bids || [] : [];
    const asks = book && !book.missing ? book.asks || [] : [];
    for (let i = 0; i < BOOK_ROWS; i += 1) {
      const tr = tbody.children[i];
      if (!tr) continue;
      const b = bids[i];
      const a = asks[i];
      const cellsOf = [
        { t: b ? text(b.venue) : '', f: 'bid_venue', v: b ? b.venue : '', c: 'venue' },
        { t: b ? intText(b.size) : '', f: 'bid_size', v: b ? b.size : '', c: 'n' },
        { t: b ? fixed(b.price, 2) : '', f: 'bid_price', v: b ? b.price : '', c: 'n bid' },
        { t: a ? fixed(a.price, 2) : '', f: 'ask_price', v: a ? a.price : '', c: 'n ask' },
        { t: a ? intText(a.size) : '', f: 'ask_size', v: a ? a.size : '', c: 'n' },
        { t: a ? text(a.venue) : '', f: 'ask_venue', v: a ? a.venue : '', c: 'venue' },
      ];
      cellsOf.forEach((c, j) => cell(tr.children[j], c));
    }
  }

  function renderSymbol(rec, doc) {
    const q = doc.quote && !doc.quote.missing ? doc.quote : {};
    const g = doc.gex && !doc.gex.missing ? doc.gex : {};
    const sk = doc.skew && !doc.skew.missing ? doc.skew : {};
    const vp = doc.vpin && !doc.vpin.missing ? doc.vpin : {};
    const im = doc.imbalance && !doc.imbalance.missing ? doc.imbalance : {};
    const rg = doc.regime && !doc.regime.missing ? doc.regime : {};
    const fl = doc.flow && !doc.flow.missing ? doc.flow : {};
    const cn = doc.chain && !doc.chain.missing ? doc.chain : {};
    const bk = doc.book && !doc.book.missing ? doc.book : {};
    field(rec, 'spot', q.spot, fixed(q.spot, 2));
    field(rec, 'bid', q.bid, fixed(q.bid, 2));
    field(rec, 'ask', q.ask, fixed(q.ask, 2));
    field(rec, 'spread', q.spread, fixed(q.spread, 2));
    field(rec, 'net_gex', g.net_gex, big(g.net_gex), tone(g.net_gex));
    field(rec, 'zero_gamma', g.zero_gamma, fixed(g.zero_gamma, 2));
    field(rec, 'zero_gamma_distance_pct', g.zero_gamma_distance_pct, signed(g.zero_gamma_distance_pct, 2));
    field(rec, 'call_wall', g.call_wall, fixed(g.call_wall, 2));
    field(rec, 'put_wall', g.put_wall, fixed(g.put_wall, 2));
    field(rec, 'gamma_regime', g.gamma_regime, text(g.gamma_regime),
      g.gamma_regime === 'positive' ? 'pos' : g.gamma_regime === 'negative' ? 'neg' : '');
    field(rec, 'dex_usd', g.dex_usd, big(g.dex_usd), tone(g.dex_usd));
    field(rec, 'skew_25d', sk.skew_25d, signed(sk.skew_25d, 4));
    field(rec, 'vpin', vp.value, fixed(vp.value, 3), isNum(vp.value) && vp.value >= 0.6 ? 'neg' : '');
    field(rec, 'imbalance', im.value, signed(im.value, 3), tone(im.value));
    field(rec, 'microprice', im.microprice, fixed(im.microprice, 3));
    field(rec, 'flow', fl.label, text(fl.label));
    field(rec, 'regime', rg.label, text(rg.label));
    field(rec, 'vol_band', rg.vol_band, text(rg.vol_band));
    field(rec, 'iv_minus_rv', rg.iv_minus_rv, signed(rg.iv_minus_rv, 3));
    field(rec, 'rv_percentile', rg.rv_percentile, fixed(rg.rv_percentile, 0));
    field(rec, 'chain_age_s', cn.age_s, ageText(cn.age_s));
    field(rec, 'chain_rows', cn.rows, intText(cn.rows));
    field(rec, 'book_levels', bk.levels, intText(bk.levels));
    const crossed = rec.el.querySelector('[data-crossed]');
    if (crossed && crossed.hidden !== !bk.crossed) crossed.hidden = !bk.crossed;
    bookRows(rec, doc.book);
    rec.sectionEnv.set('gex', doc.gex);
    rec.sectionEnv.set('tox', doc.vpin);
    rec.sectionEnv.set('regime', doc.regime);
    rec.sectionEnv.set('chain', doc.chain);
    rec.sectionEnv.set('book', doc.book);
    updateCharts(rec, doc);
  }

  // --- signals ---------------------------------------------------------------------------------------

  function deliveredText(d) {
    if (!d) return DASH;
    const sent = d.sent || 0;
    const total = Object.values(d).reduce((a, b) => a + (isNum(b) ? b : 0), 0);
    return total ? `${sent}/${total}` : DASH;
  }

  function renderSignals(rec, doc) {
    const recent = Array.isArray(doc.recent) ? doc.recent : [];
    field(rec, 'recent_count', recent.length, String(recent.length));
    field(rec, 'last_eval_age_s', doc.age_s, ageText(doc.age_s));
    rows(rec.tables.get('recent'), recent, (s) => s.id, (s) => {
      const ln = s.lineage || {};
      const bad = ln.risk === 'rejected' || ['rejected', 'cancelled', 'lost', 'orphaned', 'unknown'].includes(ln.execution);
      return [
        { t: nyTime(s.created_at), c: 'mono' },
        str('symbol', s.symbol),
        str('strategy', s.strategy),
        str('contract', s.contract),
        str('side', s.side, s.side === 'BUY' ? 'pos' : 'neg'),
        num('limit', s.limit, fixed(s.limit, 2)),
        num('score', s.score, signed(s.score, 3), tone(s.score)),
        str('status', s.status, bad ? 'neg' : ''),
        { t: text(ln.risk), f: 'risk', v: ln.risk || '', c: ln.risk === 'rejected' ? 'neg' : '',
          title: (ln.risk_reasons || []).join('; ') },
        str('execution', ln.execution),
        { t: deliveredText(ln.deliveries), f: 'delivered', v: ln.deliveries ? ln.deliveries.sent || 0 : '', c: 'n' },
      ];
    }, 'no signal yet');
    const tbody = rec.tables.get('recent');
    if (tbody) for (const tr of tbody.children) setClass(tr, 'selected', tr.getAttribute('data-row') === state.explainId);
    const card = doc.scorecard && Array.isArray(doc.scorecard.lines) ? doc.scorecard.lines : [];
    rows(rec.tables.get('scorecard'), card, (l) => `${l.strategy}:${l.symbol}`, (l) => {
      const top = Object.entries(l.blocked || {}).sort((a, b) => b[1] - a[1]).slice(0, 2)
        .map(([k, n]) => `${k} ${n}`).join(', ');
      return [str('strategy', l.strategy), str('symbol', l.symbol), num('count', l.count, intText(l.count)),
        num('decided', l.decided, intText(l.decided)),
        num('hit_rate', l.hit_rate, isNum(l.hit_rate) ? (100 * l.hit_rate).toFixed(0) + '%' : DASH),
        num('mean_return', l.mean_return, isNum(l.mean_return) ? signed(100 * l.mean_return, 1) + '%' : DASH, tone(l.mean_return)),
        num('median_return', l.median_return, isNum(l.median_return) ? signed(100 * l.median_return, 1) + '%' : DASH),
        { t: top || DASH, c: 'muted' }];
    }, 'nothing today');
    const last = Array.isArray(doc.last) ? doc.last : [];
    rows(rec.tables.get('last'), last, (e) => `${e.symbol}:${e.strategy}`, (e) => [
      str('symbol', e.symbol), str('strategy', e.strategy), num('score', e.score, signed(e.score, 3), tone(e.score)),
      { t: text(e.result), f: 'result', v: e.result || '', c: 'wrap', title: text(e.result) },
      { t: ageText(e.age_s), c: 'n muted' }], 'no evaluation');
  }

  function kvLine(label, value) {
    return el('div', null, [el('span', { class: 'k', text: label }), el('span', { class: 'v', text: value })]);
  }

  function renderExplain(doc) {
    const box = document.querySelector('[data-explain]');
    const body = document.querySelector('[data-explain-body]');
    const title = document.querySelector('[data-explain-title]');
    if (!box || !body || !title) return;
    body.replaceChildren();
    box.hidden = false;
    if (!doc || doc.missing) {
      title.textContent = 'signal ' + text(doc && doc.id);
      body.appendChild(el('p', { class: 'missing', text: text(doc && doc.missing) + (doc && doc.hint ? ' — ' + doc.hint : '') }));
      return;
    }
    const s = doc.signal || {};
    const ln = doc.lineage || {};
    title.textContent = `${text(doc.id)} · ${text(s.strategy)} · ${text(doc.describe)}`;
    body.appendChild(el('div', { class: 'kv' }, [
      kvLine('side', `${text(s.side)} ${text(s.order_type)}`), kvLine('limit', fixed(s.limit, 2)),
      kvLine('take profit', fixed(s.take_profit, 2)), kvLine('stop', fixed(s.stop, 2)),
      kvLine('score', `${signed(s.score, 3)} / ±${fixed(s.threshold, 2)}`), kvLine('mode', text(s.mode)),
      kvLine('size ×', fixed(s.size_multiplier, 2)), kvLine('created', nyTime(s.created_at)),
      kvLine('time stop', nyTime(s.time_stop)), kvLine('status', text(ln.status)),
    ]));
    const steps = [
      ['emitted', nyTime(s.created_at)],
      ['risk', ln.risk ? ln.risk + ((ln.risk_reasons || []).length ? ': ' + ln.risk_reasons.join('; ') : '') : 'no verdict yet'],
      ['execution', ln.execution ? `${ln.execution}${isNum(ln.filled) && ln.filled ? ` (filled ${ln.filled} @ ${fixed(ln.entry_avg, 2)})` : ''}` : 'not taken'],
      ['distribution', Object.entries(ln.deliveries || {}).map(([k, n]) => `${k} ${n}`).join(', ') || 'none yet'],
      ['outcome', ln.outcome ? `${ln.outcome} ${isNum(ln.return_pct) ? signed(100 * ln.return_pct, 1) + '%' : ''}` : 'open'],
    ];
    body.appendChild(el('ol', { class: 'lineage' }, steps.map(([k, v]) => el('li', null, [el('b', { text: k }), ' ' + v]))));
    const factors = Array.isArray(s.factors) ? s.factors : [];
    const inputs = s.factor_inputs && typeof s.factor_inputs === 'object' ? s.factor_inputs : {};
    const used = (name) => Object.entries(inputs[name] || {})
      .map(([k, v]) => `${k}=${isNum(v) ? Number(v.toPrecision(4)) : text(v)}`).join(', ');
    body.appendChild(el('h4', { text: 'factors' }));
    body.appendChild(el('table', { class: 'grid' }, [
      el('thead', null, [el('tr', null, ['factor', 'value', 'weight', 'contribution', 'age s', 'why'].map((h) => el('th', { text: h })))]),
      el('tbody', null, factors.map((f) => el('tr', null, [
        el('td', { text: text(f.name) }),
        el('td', { class: 'n', text: f.value === null ? 'abstains' : signed(f.value, 3) }),
        el('td', { class: 'n', text: fixed(f.weight, 2) }),
        el('td', { class: 'n ' + tone(f.contribution), text: signed(f.contribution, 3) }),
        el('td', { class: 'n', text: fixed(f.age_s, 1) }),
        el('td', { class: 'muted wrap', text: f.reason ? f.reason : (used(f.name) || DASH) }),
      ]))),
    ]));
    const gates = Array.isArray(s.gates) ? s.gates : [];
    if (gates.length) {
      body.appendChild(el('h4', { text: 'gates' }));
      body.appendChild(el('table', { class: 'grid' }, [el('tbody', null, gates.map((g) => el('tr', null, [
        el('td', { text: text(g.name) }), el('td', { class: g.open ? 'pos' : 'neg', text: g.open ? 'open' : 'shut' }),
        el('td', { class: 'muted wrap', text: text(g.reason) })])))]));
    }
    const intent = doc.intent;
    if (intent && Array.isArray(intent.orders)) {
      body.appendChild(el('h4', { text: `orders (${text(intent.state)})` }));
      for (const why of Array.isArray(intent.reasons) ? intent.reasons : []) {
        body.appendChild(el('p', { class: 'muted wrap', text: why }));
      }
      body.appendChild(el('table', { class: 'grid' }, [el('tbody', null, intent.orders.map((o) => el('tr', null, [
        el('td', { text: text(o.leg) }), el('td', { text: text(o.action) }), el('td', { class: 'n', text: text(o.quantity) }),
        el('td', { text: text(o.order_type) }), el('td', { class: 'n', text: fixed(o.limit, 2) }),
        el('td', { class: 'n', text: fixed(o.aux, 2) }), el('td', { text: text(o.status) }),
        el('td', { class: 'n', text: `${text(o.filled)} @ ${fixed(o.avg_price, 2)}` })])))]));
    }
    for (const note of Array.isArray(s.notes) ? s.notes : []) body.appendChild(el('p', { class: 'muted', text: 'note: ' + note }));
  }

  async function explain(id) {
    state.explainId = id;
    const tbody = document.querySelector('[data-panel="signals"] table[data-table="recent"] tbody');
    if (tbody) for (const tr of tbody.children) setClass(tr, 'selected', tr.getAttribute('data-row') === id);
    try {
      const res = await fetch('/api/signals/' + encodeURIComponent(id), { credentials: 'same-origin', cache: 'no-store' });
      const body = await res.json().catch(() => null);
      if (state.explainId !== id) return;
      if (!res.ok && !(body && body.missing)) {
        renderExplain({ id, missing: (body && (body.error || body.message)) || `HTTP ${res.status}` });
        return;
      }
      renderExplain(body);
    } catch (err) {
      renderExplain({ id, missing: 'could not load the signal: ' + (err && err.message ? err.message : 'network error') });
    }
  }

  // --- trading -----------------------------------------------------------------------------------

  function renderTrading(rec, doc) {
    const positions = Array.isArray(doc.positions) ? doc.positions : [];
    const orders = Array.isArray(doc.orders) ? doc.orders : [];
    const fills = Array.isArray(doc.fills) ? doc.fills : [];
    field(rec, 'unrealised_usd', doc.unrealised_usd, money(doc.unrealised_usd), tone(doc.unrealised_usd));
    field(rec, 'realised_today_usd', doc.realised_today_usd, money(doc.realised_today_usd), tone(doc.realised_today_usd));
    field(rec, 'positions_count', positions.length, String(positions.length));
    field(rec, 'orders_count', orders.length, String(orders.length));
    field(rec, 'unprotected', doc.unprotected, text(doc.unprotected), isNum(doc.unprotected) && doc.unprotected > 0 ? 'neg' : '');
    rows(rec.tables.get('positions'), positions, (p) => p.con_id, (p) => {
      const stops = Array.isArray(p.stops) ? p.stops : [];
      const stopText = stops.length === 1 ? fixed(stops[0].trigger, 2) : stops.length ? stops.map((s) => fixed(s.trigger, 2)).join(' / ') : 'NONE';
      return [
        { t: text(p.contract), f: 'contract', v: p.contract || '', title: `conId ${p.con_id}` },
        num('qty', p.qty, signed(p.qty, 0), tone(p.qty)),
        num('avg_cost', p.avg_cost, fixed(p.avg_cost, 2)),
        num('mark', p.mark, fixed(p.mark, 2)),
        num('unrealised_usd', p.unrealised_usd, money(p.unrealised_usd), tone(p.unrealised_usd)),
        num('realised_today_usd', p.realised_today_usd, money(p.realised_today_usd), tone(p.realised_today_usd)),
        { t: stopText, f: 'stop', v: isNum(p.stop) ? p.stop : '', c: 'n' + (p.unprotected ? ' neg strong' : '') },
        { t: `${text(p.protected_qty)}/${isNum(p.qty) ? Math.abs(p.qty) : DASH}`, f: 'protected_qty', v: p.protected_qty, c: 'n' + (p.unprotected ? ' neg' : '') },
      ];
    }, 'flat');
    rows(rec.tables.get('orders'), orders, (o) => o.order_ref, (o) => [
      { t: text(o.contract), f: 'contract', v: o.contract || '', title: text(o.order_ref) },
      str('leg', o.leg), str('action', o.action, o.action === 'BUY' ? 'pos' : 'neg'),
      num('quantity', o.quantity, text(o.quantity)), str('order_type', o.order_type),
      num('limit', o.limit, fixed(o.limit, 2)), num('aux', o.aux, fixed(o.aux, 2)), str('status', o.status),
      num('filled', o.filled, text(o.filled))], 'none working');
    rows(rec.tables.get('fills'), fills, (f) => f.exec_id, (f) => [
      { t: nyTime(f.at), c: 'mono', title: text(f.order_ref) }, str('symbol', f.symbol),
      str('side', f.side, f.side === 'BUY' ? 'pos' : 'neg'), num('quantity', f.quantity, text(f.quantity)),
      num('price', f.price, fixed(f.price, 2)), num('commission_usd', f.commission_usd, fixed(f.commission_usd, 2)),
      str('leg', f.leg), str('kind', f.kind)], 'no fill');
  }

  // --- risk -------------------------------------------------------------------------------------------

  function stateClass(s) {
    return s === 'HALTED' ? 'halted' : s === 'REDUCING' ? 'reducing' : s === 'ACTIVE' ? 'active' : '';
  }

  function renderRisk(rec, doc) {
    field(rec, 'trading_state', doc.trading_state, text(doc.trading_state), stateClass(doc.trading_state));
    field(rec, 'pnl_today_usd', doc.pnl_today_usd, money(doc.pnl_today_usd), tone(doc.pnl_today_usd));
    field(rec, 'pnl_high_water_usd', doc.pnl_high_water_usd, money(doc.pnl_high_water_usd));
    field(rec, 'drawdown_usd', doc.drawdown_usd, money(doc.drawdown_usd), isNum(doc.drawdown_usd) && doc.drawdown_usd > 0 ? 'neg' : '');
    field(rec, 'breaches_last_hour', doc.breaches_last_hour, text(doc.breaches_last_hour),
      isNum(doc.breaches_last_hour) && doc.breaches_last_hour > 3 ? 'neg' : '');
    const mirror = document.querySelector('[data-mirror="trading_state"]');
    if (mirror) {
      setText(mirror, text(doc.trading_state));
      const want = 'state-badge ' + stateClass(doc.trading_state);
      if (mirror.className !== want) mirror.className = want;
    }
    rows(rec.tables.get('states'), Array.isArray(doc.states) ? doc.states : [], (s) => s.scope, (s) => [
      str('scope', s.scope), { t: text(s.state), f: 'state', v: s.state || '', c: 'state-badge ' + stateClass(s.state) },
      str('cause', s.cause), str('by', s.by), { t: nyTime(s.since), c: 'mono' }, { t: text(s.reason), c: 'wrap muted' }]);
    rows(rec.tables.get('usage'), Array.isArray(doc.usage) ? doc.usage : [], (u) => `${u.name}:${u.scope}`, (u) => {
      const pct = isNum(u.pct) ? u.pct : (u.breached ? 100 : 0);
      const cls = u.breached ? 'neg' : u.warn ? 'warn' : '';
      return [str('name', u.name, 'break small-text'), str('scope', u.scope), num('value', u.value, big(u.value)),
        num('limit', u.limit, u.off ? 'off' : big(u.limit)),
        num('pct', u.pct, isNum(u.pct) ? u.pct.toFixed(1) + '%' : (u.breached ? '∞' : DASH), cls),
        { t: '█'.repeat(Math.max(0, Math.min(10, Math.round(pct / 10)))), c: 'bar ' + cls }];
    }, 'no snapshot');
    rows(rec.tables.get('breakers'), Array.isArray(doc.breakers) ? doc.breakers : [], (b) => `${b.scope}:${b.breaker}`, (b) => [
      str('scope', b.scope), str('breaker', b.breaker), str('reading', b.value, 'wrap'), str('trips_at', b.trips_at, 'wrap'),
      str('clears_at', b.clears_at, 'wrap')], 'no reading');
    const transitions = Array.isArray(doc.transitions) ? doc.transitions : [];
    rows(rec.tables.get('transitions'), transitions, (t) => `${t.at}:${t.scope}:${t.to}`, (t) => [
      { t: nyTime(t.at), c: 'mono' }, str('scope', t.scope), { t: `${text(t.from)} → ${text(t.to)}`, c: stateClass(t.to) },
      str('cause', t.cause), str('by', t.by), { t: text(t.reason), c: 'wrap muted' }], 'none');
  }

  // --- health -----------------------------------------------------------------------------------------

  function renderHealth(rec, doc) {
    const st = doc.state;
    field(rec, 'state', st, text(st), st === 'healthy' ? 'active' : st === 'warning' ? 'reducing' : st ? 'halted' : '');
    const mirror = document.querySelector('[data-mirror="health_state"]');
    if (mirror) {
      setText(mirror, text(st));
      const want = 'state-badge ' + (st === 'healthy' ? 'active' : st === 'warning' ? 'reducing' : st ? 'halted' : '');
      if (mirror.className !== want) mirror.className = want;
    }
    const clock = document.querySelector('[data-clock]');
    if (clock && doc.as_of) setText(clock, 'qc time ' + nyTime(doc.as_of) + ' NY');
    const stale = doc.stale_feeds && typeof doc.stale_feeds === 'object' ? doc.stale_feeds : {};
    const staleList = Object.entries(stale);
    field(rec, 'stale_feeds_count', staleList.length, String(staleList.length), staleList.length ? 'neg' : '');
    const av = doc.alpha_vantage || {};
    field(rec, 'av_tokens_left', av.tokens_left, text(av.tokens_left),
      isNum(av.tokens_left) && isNum(av.tokens_min) && av.tokens_left < av.tokens_min ? 'neg' : '');
    field(rec, 'av_requests_last_minute', av.requests_last_minute, text(av.requests_last_minute));
    field(rec, 'av_rpm', av.rpm, text(av.rpm));
    const dist = doc.distribution || {};
    const channels = Array.isArray(dist.channels) ? dist.channels : [];
    const sum = (k) => (channels.length ? channels.reduce((a, c) => a + (isNum(c[k]) ? c[k] : 0), 0) : null);
    field(rec, 'dist_sent', sum('sent'), text(sum('sent')));
    field(rec, 'dist_failed', sum('failed'), text(sum('failed')), sum('failed') ? 'neg' : '');
    const dead = dist.dead_letters ? dist.dead_letters.count : null;
    field(rec, 'dist_dead', dead, text(dead), isNum(dead) && dead > 0 ? 'warn' : '');
    field(rec, 'dist_worker', dist.worker || dist.missing || null, text(dist.worker || dist.missing));
    const ex = doc.executor || {};
    const exs = ex.status || {};
    const role = Object.keys(exs).length ? `executor ${text(exs.role)}, ${text(exs.state)}; open intents ${text(ex.open_intents)}; ` +
      `failed orders today ${text(ex.failed_orders_today)}` : 'no executor status (is `qc execute` running?)';
    field(rec, 'executor_role', exs.role || null, role);
    rows(rec.tables.get('checks'), Array.isArray(doc.checks) ? doc.checks : [], (c) => c.check, (c) => {
      const label = !c.ok ? 'ALERT' : c.warn ? 'WARN' : 'ok';
      return [str('check', c.check), { t: text(c.text), f: 'value', v: isNum(c.value) ? c.value : (c.text || ''), c: 'wrap' },
        { t: text(c.threshold_text), c: 'muted' }, { t: label, f: 'ok', v: c.ok ? 'ok' : label, c: !c.ok ? 'neg strong' : c.warn ? 'warn' : 'pos' }];
    });
    rows(rec.tables.get('stale'), staleList, ([feed]) => feed, ([feed, s]) => [str('feed', feed), num('age_s', s, ageText(s), 'neg')], 'none');
    const chains = av.chains && typeof av.chains === 'object' ? Object.entries(av.chains) : [];
    rows(rec.tables.get('chains'), chains, ([sym]) => sym, ([sym, c]) => [str('symbol', sym),
      num('ok_age_s', c.ok_age_s, isNum(c.ok_age_s) ? ageText(c.ok_age_s) + ' ago' : DASH),
      num('rows', c.rows, intText(c.rows)), num('divergent', c.divergent, intText(c.divergent)),
      { t: text(c.last_error), c: c.last_error ? 'neg wrap' : 'muted' }], av.missing || 'none');
    rows(rec.tables.get('channels'), channels, (c) => `${c.tier}:${c.channel}`, (c) => {
      const lat = c.latency_s || {};
      return [str('tier', c.tier), str('channel', c.channel), num('sent', c.sent, text(c.sent)),
        num('failed', c.failed, text(c.failed), c.failed ? 'neg' : ''), num('retried', c.retried, text(c.retried)),
        num('rate_limited', c.rate_limited, text(c.rate_limited)), num('dead', c.dead, text(c.dead), c.dead ? 'warn' : ''),
        num('p50', lat.p50, fixed(lat.p50, 2)), num('p99', lat.p99, fixed(lat.p99, 2)),
        num('outbox', c.outbox ? c.outbox.length : null, c.outbox ? `${c.outbox.length} (${c.outbox.pending})` : DASH)];
    }, dist.missing || 'no channel');
  }

  // --- dispatch -------------------------------------------------------------------------------------

  const RENDER = { symbol: renderSymbol, signals: renderSignals, trading: renderTrading, risk: renderRisk, health: renderHealth };

  function recordFor(id) {
    if (state.panels.has(id)) return state.panels.get(id);
    if (id.startsWith('symbol:')) return ensureSymbolPanel(id.slice(7));
    const root = document.querySelector(`[data-panel="${CSS.escape(id)}"]`);
    return root ? indexPanel(root, id, id) : null;
  }

  function render(id, doc) {
    const rec = recordFor(id);
    if (!rec || !doc || typeof doc !== 'object') return;
    rec.doc = doc;
    rec.at = performance.now();
    setMissing(rec, doc);
    const fn = RENDER[rec.kind];
    if (fn) {
      try {
        fn(rec, doc);
      } catch (err) {
        setMissing(rec, { missing: 'could not show this panel: ' + (err && err.message ? err.message : String(err)) });
      }
    }
    applyFreshness(rec, rec.at);
  }

  function flush() {
    state.scheduled = false;
    const batch = Array.from(state.pending);
    state.pending.clear();
    for (const [id, doc] of batch) render(id, doc);
  }

  function receive(id, doc) {
    state.pending.set(id, doc);
    if (!state.scheduled) {
      state.scheduled = true;
      if (document.hidden) setTimeout(flush, 250);
      else requestAnimationFrame(flush);
    }
  }

  // --- the event stream -------------------------------------------------------------------------------

  function setConnected(on) {
    state.connected = on;
    if (on) state.everConnected = true;
    const node = document.querySelector('[data-conn]');
    if (node) {
      setText(node, on ? 'live' : state.everConnected ? 'disconnected — reconnecting…' : 'connecting…');
      node.className = 'conn ' + (on ? 'live' : 'down');
    }
    tick();
  }

  function connect() {
    if (typeof EventSource === 'undefined') {
      flash('this browser has no EventSource: the page cannot update', 'error');
      return;
    }
    const es = new EventSource('/events');
    state.es = es;
    es.addEventListener('open', () => {
      state.retryMs = 1000;
      setConnected(true);
    });
    es.addEventListener('panel', (ev) => {
      let msg = null;
      try { msg = JSON.parse(ev.data); } catch (err) { msg = null; }
      if (msg && typeof msg.id === 'string' && msg.doc && typeof msg.doc === 'object') receive(msg.id, msg.doc);
    });
    es.addEventListener('error', () => {
      setConnected(false);
      if (es.readyState === EventSource.CLOSED) {  // refused (e.g. 401): the browser will not retry by itself
        es.close();
        const wait = state.retryMs;
        state.retryMs = Math.min(30000, state.retryMs * 2);
        setTimeout(connect, wait);
      }
    });
  }

  // --- session and actions --------------------------------------------------------------------------

  async function loadSession() {
    try {
      const res = await fetch('/api/session', { credentials: 'same-origin', cache: 'no-store' });
      if (!res.ok) {
        const body = await res.text().catch(() => '');
        flash(`session refused (HTTP ${res.status}): ${body.slice(0, 200)}`, 'error');
        return null;
      }
      const s = await res.json();
      state.session = s;
      for (const node of document.querySelectorAll('[data-session]')) {
        const k = node.getAttribute('data-session');
        setText(node, text(s[k]));
      }
      for (const sym of Array.isArray(s.symbols) ? s.symbols : []) ensureSymbolPanel(sym);
      const select = document.querySelector('[data-confirm-scope]');
      if (select && Array.isArray(s.symbols)) {
        for (const sym of s.symbols) {
          if (!select.querySelector(`option[value="${CSS.escape(sym)}"]`)) select.appendChild(el('option', { value: sym, text: sym }));
        }
      }
      setActionsEnabled(s.actions_enabled === true);
      return s;
    } catch (err) {
      flash('could not reach the dashboard server: ' + (err && err.message ? err.message : 'network error'), 'error');
      return null;
    }
  }

  function setActionsEnabled(on) {
    for (const b of document.querySelectorAll('[data-action]')) {
      b.disabled = !on;
      b.title = on ? '' : 'disabled: set QC_OPERATOR_TOKEN for `qc dashboard` to enable the operator actions';
    }
    const note = document.querySelector('[data-actions-note]');
    if (note) setText(note, on ? 'each asks for a reason and the operator token' : 'actions disabled (QC_OPERATOR_TOKEN not set)');
  }

  const ACTIONS = {
    halt: { title: 'Halt trading', go: 'Halt', text: 'Latch HALTED now: no new orders; qc\'s working entries are cancelled; protective stops stay.' },
    resume: { title: 'Resume trading', go: 'Resume', text: 'Lower the latch back to ACTIVE (the only way out of HALTED). A reason is required.' },
    flatten: { title: 'Flatten positions', go: 'Flatten', text: 'Halt, cancel qc\'s entries and close qc\'s positions at the market (regular hours only).' },
  };

  function openConfirm(name) {
    const dlg = document.querySelector('dialog[data-confirm]');
    if (!dlg) return;
    const spec = ACTIONS[name];
    dlg.dataset.action = name;
    setText(dlg.querySelector('[data-confirm-title]'), spec.title);
    setText(dlg.querySelector('[data-confirm-text]'), spec.text);
    setText(dlg.querySelector('[data-confirm-go]'), spec.go);
    const err = dlg.querySelector('[data-confirm-error]');
    if (err) err.hidden = true;
    const form = dlg.querySelector('form');
    if (form) {
      form.elements.reason.value = '';
      form.elements.operator_token.value = '';
    }
    if (typeof dlg.showModal === 'function') dlg.showModal(); else dlg.setAttribute('open', '');
    if (form) form.elements.reason.focus();
  }

  function closeConfirm() {
    const dlg = document.querySelector('dialog[data-confirm]');
    if (!dlg) return;
    const form = dlg.querySelector('form');
    if (form) form.elements.operator_token.value = '';
    if (typeof dlg.close === 'function' && dlg.open) dlg.close(); else dlg.removeAttribute('open');
  }

  function answerText(res, body) {
    if (body && typeof body === 'object') {
      const said = body.ok === false ? body.error || body.message : body.message || body.error || body.detail;
      if (typeof said === 'string' && said) return said;
      return JSON.stringify(body).slice(0, 400);
    }
    return typeof body === 'string' && body ? body.slice(0, 400) : `HTTP ${res.status}`;
  }

  async function submitAction(ev) {
    ev.preventDefault();
    const dlg = document.querySelector('dialog[data-confirm]');
    const form = ev.target;
    const name = dlg ? dlg.dataset.action : '';
    if (!ACTIONS[name]) return;
    const reason = form.elements.reason.value.trim();
    const token = form.elements.operator_token.value;
    const errBox = dlg.querySelector('[data-confirm-error]');
    if (!token) {
      if (errBox) { errBox.textContent = 'type the operator token'; errBox.hidden = false; }
      flash(`${name}: type the operator token`, 'error');
      return;
    }
    const body = { reason, operator_token: token };
    const symbol = form.elements.symbol ? form.elements.symbol.value : '';
    if (symbol) body.symbol = symbol;
    const go = dlg.querySelector('[data-confirm-go]');
    if (go) go.disabled = true;
    flash(`${name}: sending…`, 'info');
    try {
      const res = await fetch('/api/actions/' + name, {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': state.session ? state.session.csrf || '' : '' },
        body: JSON.stringify(body),
      });
      const raw = await res.text();
      let parsed = raw;
      try { parsed = JSON.parse(raw); } catch (err) { parsed = raw; }
      const said = answerText(res, parsed);
      if (res.ok && !(parsed && typeof parsed === 'object' && parsed.ok === false)) {
        flash(`${name}: ${said}`, 'ok');
        closeConfirm();
      } else {
        flash(`${name} refused (HTTP ${res.status}): ${said}`, 'error');
        if (errBox) { errBox.textContent = said; errBox.hidden = false; }
        if (res.status === 403 || res.status === 401) loadSession();
      }
    } catch (err) {
      flash(`${name} failed: ${err && err.message ? err.message : 'network error'}`, 'error');
    } finally {
      if (go) go.disabled = false;
      form.elements.operator_token.value = '';
    }
  }

  // --- start ----------------------------------------------------------------------------------------

  function wire() {
    for (const b of document.querySelectorAll('[data-action]')) {
      b.addEventListener('click', () => { if (!b.disabled) openConfirm(b.getAttribute('data-action')); });
    }
    const dlg = document.querySelector('dialog[data-confirm]');
    if (dlg) {
      const form = dlg.querySelector('form');
      if (form) form.addEventListener('submit', submitAction);
      const cancel = dlg.querySelector('[data-confirm-cancel]');
      if (cancel) cancel.addEventListener('click', closeConfirm);
      dlg.addEventListener('cancel', () => { const f = dlg.querySelector('form'); if (f) f.elements.operator_token.value = ''; });
    }
    const recent = document.querySelector('[data-panel="signals"] table[data-table="recent"] tbody');
    if (recent) {
      recent.addEventListener('click', (ev) => {
        const tr = ev.target instanceof Element ? ev.target.closest('tr[data-row]') : null;
        if (tr) explain(tr.getAttribute('data-row'));
      });
    }
    const close = document.querySelector('[data-explain-close]');
    if (close) {
      close.addEventListener('click', () => {
        state.explainId = null;
        const box = document.querySelector('[data-explain]');
        if (box) box.hidden = true;
        for (const tr of document.querySelectorAll('tr.selected')) tr.classList.remove('selected');
      });
    }
    const flashBox = document.querySelector('[data-flash]');
    if (flashBox) flashBox.addEventListener('click', () => { flashBox.hidden = true; });
  }

  function start() {
    for (const id of ['signals', 'trading', 'risk', 'health']) recordFor(id);
    wire();
    setConnected(false);
    loadSession();
    connect();
    setInterval(tick, TICK_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
