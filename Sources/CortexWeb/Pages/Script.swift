extension Pages {
  // The whole client: it draws the page the path names, reads /api/…, and follows the event
  // stream. Data is only ever put into the page as text (textContent), never as markup.
  static let scriptText = #"""
    'use strict';
    const $ = (id) => document.getElementById(id);
    function el(tag, attrs, ...kids) {
      const e = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
      }
      for (const k of kids) if (k != null) e.append(k.nodeType ? k : document.createTextNode(String(k)));
      return e;
    }
    // One formatter each, made once: toLocaleString builds a new one at every call.
    const numberFormat = new Intl.NumberFormat('en-US'), timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
    const fmt = (n) => (n == null ? '–' : numberFormat.format(Number(n)));
    const clock = (ms) => timeFormat.format(new Date(ms));
    const ago = (ms) => { if (!ms) return '–'; const s = Math.max(0, (Date.now() - ms) / 1000);
      return s < 60 ? s.toFixed(0) + ' s ago' : s < 3600 ? (s / 60).toFixed(0) + ' min ago' : (s / 3600).toFixed(1) + ' h ago'; };
    const dur = (ms) => ms == null ? '–' : ms < 1000 ? ms + ' ms' : ms < 60000 ? (ms / 1000).toFixed(1) + ' s' : (ms / 60000).toFixed(1) + ' min';
    const taskId = (n) => 'task-' + String(n).padStart(6, '0');
    const workerId = (n) => 'worker-' + String(n).padStart(3, '0');
    const STATES = ['queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'rejected'];
    const WSTATE = { s: 'starting', i: 'idle', b: 'busy', t: 'stopping', r: 'restarting', p: 'parked', x: 'stopped' };
    // What the page drew, read by the benchmark (scripts/web/bench.py) and the browser tests:
    // `cortexLatency`, milliseconds from each drawn event's timestamp to the moment it was on the
    // page; `cortexDraws`, when the page drew which log seq (the overview's status, the task
    // list's answer: the benchmark maps each event's seq to the first draw that showed it). Both
    // are bounded (a page open for hours stays small): past 100,000 entries the oldest 50,000
    // go, and `cortexDropped` counts them, so that what is left is never taken for all there was
    // (the bound was 20,000, halved without a word: a benchmark run read 10,001 drawn events of
    // the events page, what was left after its 20,001st). A reader starts afresh by setting all three anew.
    window.cortexLatency = []; window.cortexDraws = []; window.cortexDropped = { latency: 0, draws: 0 };
    function record(kind, list, v) {
      list.push(v);
      if (list.length > 100000) { list.splice(0, 50000); window.cortexDropped[kind] += 50000; }
    }
    function noteLatency(ev) {
      const t = Date.parse(ev.ts);
      if (!isNaN(t)) record('latency', window.cortexLatency, Date.now() - t);
    }
    function noteDraw(seq) {
      if (seq != null) record('draws', window.cortexDraws, [Date.now(), seq]);
    }
    // Never throws: a daemon that does not answer (stopped, or restarted on another port) is an
    // answer too, {ok: false, error} in words, which the page shows where the result would be.
    async function api(path, body) {
      const opts = body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
      let r;
      try { r = await fetch(path, opts); } catch (e) { return { ok: false, error: unreachable() }; }
      let j = null; try { j = await r.json(); } catch (e) { j = { ok: false, error: 'HTTP ' + r.status }; }
      if (!r.ok && j && j.ok !== false) j.ok = false;
      return j;
    }
    const unreachable = () => 'no answer from the daemon at ' + location.host + ': it is stopped, or it restarted and serves another address (cortex start prints the address, also when the daemon already runs)';
    // Why the page is not live, in words above it (empty: it is): what is drawn is as of `since`.
    let downSince = null;
    function connection(ok, why) {
      const note = $('conn-note');
      if (ok) { downSince = null; note.hidden = true; setText(note, ''); return; }
      if (downSince === null) downSince = Date.now();
      setText(note, 'Not live since ' + clock(downSince) + ' (what the page shows is as of then): ' + why);
      note.hidden = false;
    }
    // `path`: another stream than the event log's (the task list's, `/api/tasks?…&follow=1`).
    function stream(query, handlers, path) {
      let es = null, last = null, closed = false, down = false;
      const open = () => {
        const q = path ? query : query + '&batch=1' + (last != null ? '&since=' + last : '');
        es = new EventSource((path || '/api/events') + '?' + q);
        // Back after a gap: what changed meanwhile may be older than the stream replays (or the
        // page had no resume point yet), so the page reads its data afresh (`reopened`).
        es.onopen = () => { $('live').className = 'live on'; $('live').textContent = 'live'; connection(true); if (down) { down = false; if (handlers.reopened) handlers.reopened(); } };
        es.onerror = () => {
          $('live').className = 'live off'; $('live').textContent = 'reconnecting…'; down = true;
          if (closed) return;
          if (es.readyState !== EventSource.CLOSED) { connection(false, unreachable()); return; }
          // The server answered with an error (a 401 after a restart, which made a new token):
          // the browser gives the stream up. Say why, and try again every 5 s (signing in with
          // the new address in another tab makes this one live again).
          es.close();
          api('/api/status').then((j) => { if (!closed) connection(false, j.ok ? 'the event stream was refused' : j.error); });
          setTimeout(() => { if (!closed) open(); }, 5000);
        };
        es.addEventListener('logs', (m) => {
          last = m.lastEventId; const list = JSON.parse(m.data);
          if (handlers.logs) handlers.logs(list); else if (handlers.log) for (const ev of list) handlers.log(ev);
        });
        es.addEventListener('skipped', (m) => handlers.skipped && handlers.skipped(JSON.parse(m.data).skipped));
        es.addEventListener('status', (m) => handlers.status && handlers.status(JSON.parse(m.data)));
        es.addEventListener('series', (m) => handlers.series && handlers.series(JSON.parse(m.data)));
        es.addEventListener('peers', (m) => handlers.peers && handlers.peers(JSON.parse(m.data)));
        es.addEventListener('groups', (m) => handlers.groups && handlers.groups(JSON.parse(m.data)));
        es.addEventListener('tasks', (m) => handlers.tasks && handlers.tasks(JSON.parse(m.data)));
      };
      open();
      return { close: () => { closed = true; es.close(); } };
    }
    function throttle(fn, ms) {
      let t = null, again = false;
      return () => { if (t) { again = true; return; } fn(); t = setTimeout(() => { t = null; if (again) { again = false; fn(); } }, ms); };
    }
    // Calls fn once in the next animation frame however often it is asked to before then: all the
    // messages that arrived since the last frame become one DOM update, and no sooner than minMs
    // after the previous one (each frame a headless software-rendered browser draws costs it
    // several milliseconds of CPU however little changed). A hidden tab gets no frames; there a
    // timer draws it (browsers run those at most once a second in the background).
    function perFrame(fn, minMs) {
      let asked = false, last = -1e9;
      const run = () => { if (asked) { asked = false; last = performance.now(); fn(); } };
      const frame = () => { requestAnimationFrame(run); if (document.hidden) setTimeout(run, 1000); };
      return () => {
        if (asked) return; asked = true;
        const wait = last + (minMs || 0) - performance.now();
        if (wait > 0) setTimeout(frame, wait); else frame();
      };
    }
    // Writes only what changed: an unchanged value costs the browser no style or layout work.
    function setText(e, v) { v = String(v); if (e.textContent !== v) e.textContent = v; }
    function setWidth(e, pct) { const w = pct.toFixed(2) + '%'; if (e.style.width !== w) e.style.width = w; }

    // ---------- overview ----------
    function overview(main) {
      const counts = el('div', { class: 'counts' }, ...STATES.map((s) => el('div', { class: 'count' }, el('b', { id: 'count-' + s, text: '–' }), el('span', { text: s.replace('_', ' ') }))));
      const prio = el('div', {}, ...['critical', 'high', 'medium', 'low'].map((p) => el('div', { class: 'prio' }, el('span', { text: p }), el('div', { class: 'bar' }, el('i', { id: 'qbar-' + p })), el('span', { class: 'n', id: 'queue-' + p, text: '–' }))));
      const budget = el('dl', { class: 'kv' }, ...['total', 'reserved', 'used', 'available'].flatMap((k) => [el('dt', { text: k }), el('dd', { id: 'budget-' + k, text: '–' })]));
      const health = el('dl', { class: 'kv' }, ...[['phase', 'phase'], ['pid', 'pid'], ['up', 'uptime'], ['admitting', 'admitting'], ['log seq', 'seq'], ['pool size', 'pool'], ['hot state', 'updated']].flatMap(([l, k]) => [el('dt', { text: l }), el('dd', { id: 'health-' + k, text: '–' })]));
      const scaleIn = el('input', { id: 'scale-input', type: 'number', min: '1', max: '1024' });
      scaleIn.style.width = '90px';
      const scaleMsg = el('span', { id: 'scale-msg', class: 'msg' });
      const scaleBtn = el('button', { id: 'scale-btn', text: 'Scale pool', onclick: async () => {
        // An empty box (or text, which a number box reads as empty) was sent as 0 and refused as
        // "not 0": say what to type instead.
        if (!/^\s*\d+(\.\d*)?\s*$/.test(scaleIn.value)) { scaleMsg.className = 'msg err'; scaleMsg.textContent = 'type the pool size: a whole number from 1 to 1024'; return; }
        scaleMsg.textContent = '…'; const j = await api('/api/scale', { workers: Number(scaleIn.value) });
        scaleMsg.className = 'msg' + (j.ok ? '' : ' err'); scaleMsg.textContent = j.ok ? 'pool size ' + j.workers : j.error; } });
      const budgetBar = el('div', { class: 'bar', id: 'budget-bar' });
      const groups = groupsCard();
      main.append(
        el('div', { class: 'cards' },
          el('div', { class: 'card' }, el('h2', { id: 'tasks-title', text: 'Tasks' }), counts),
          el('div', { class: 'card' }, el('h2', { id: 'queue-title', text: 'Queue by priority' }), prio),
          el('div', { class: 'card' }, el('h2', { id: 'budget-title', text: 'Token budget' }), budgetBar, el('div', {}, budget)),
          el('div', { class: 'card' }, el('h2', { text: 'Daemon' }), health)),
        groups.card,
        el('div', { class: 'card', id: 'cluster-card', hidden: '' }, el('h2', { id: 'cluster-title', text: 'Cluster' }),
          el('table', {}, el('thead', {}, el('tr', {}, ...['node', 'state', 'epoch', 'lease left', 'host', 'pid', 'workers', 'running', 'running tasks'].map((h) => el('th', { text: h })))), el('tbody', { id: 'cluster-nodes' }))),
        el('div', { class: 'card', id: 'workers-card' },
          el('h2', { id: 'workers-title', text: 'Workers' }), el('div', { id: 'grid' }), el('div', { id: 'node-grids' }),
          el('div', { class: 'legend' }, ...Object.values(WSTATE).map((s) => el('span', {}, el('span', { class: 'tile s-' + s }), s)), el('span', {}, scaleIn, ' ', scaleBtn, scaleMsg))),
        el('div', { class: 'row2' },
          el('div', { class: 'card' }, el('h2', { id: 'rate-title', text: 'Throughput (tasks/s, 5 s windows, last 5 min)' }), chart('chart-rate')),
          el('div', { class: 'card' }, el('h2', { id: 'latency-title', text: 'Latency submit → finish (ms): p50 · p95 · p99' }), chart('chart-latency'))),
        el('div', { id: 'node-charts' }));
      budgetBar.style.marginBottom = '8px';
      const budgetParts = [['used', '#c9a227'], ['reserved', '#5aa9e6'], ['available', '#2f9e5a']].map(([k, c]) => { const i = el('i'); i.style.background = c; budgetBar.append(i); return [k, i]; });
      for (const p of ['critical', 'high', 'medium', 'low']) $('qbar-' + p).style.background = 'var(--accent)';
      const tiles = [];
      const grid = $('grid');
      const byId = {};
      const node = (id) => byId[id] || (byId[id] = $(id));
      // Status messages (at most five a second) are kept; the newest is drawn in the next frame.
      let latest = null;
      const redraw = perFrame(() => drawStatus(latest), 150);
      function status(s) { latest = s; redraw(); }
      function drawStatus(s) {
        // In cluster mode the counts and the queue are the cluster's (from PostgreSQL).
        const cw = s.cluster && s.cluster.counts ? s.cluster : s, qbp = cw.queued_by_priority;
        for (const k of STATES) setText(node('count-' + k), fmt(cw.counts[k]));
        const qmax = Math.max(1, ...Object.values(qbp));
        for (const [p, n] of Object.entries(qbp)) { setText(node('queue-' + p), fmt(n)); setWidth(node('qbar-' + p), 100 * n / qmax); }
        // In cluster mode the budget is the cluster's (PostgreSQL holds it; a node's own is unbounded).
        const cb = s.cluster && s.cluster.budget, bud = cb && cb.total != null ? { ...cb, available: cb.total - cb.reserved - cb.used } : s.budget;
        for (const k of ['total', 'reserved', 'used', 'available']) setText(node('budget-' + k), fmt(bud[k]));
        const tot = Math.max(1, bud.total);
        for (const [k, i] of budgetParts) { setWidth(i, 100 * bud[k] / tot); const t = k + ' ' + fmt(bud[k]); if (i.title !== t) i.title = t; }
        setText(node('health-phase'), s.phase); setText(node('health-pid'), s.pid); setText(node('health-uptime'), dur(s.now_ms - s.started_ms));
        setText(node('health-admitting'), s.admitting ? 'yes' : 'no'); setText(node('health-seq'), fmt(s.seq));
        setText(node('health-pool'), s.pool_size); setText(node('health-updated'), ago(s.updated_ms));
        const st = s.workers.states, tk = s.workers.tasks;
        if (tiles.length < st.length) { const f = document.createDocumentFragment(); while (tiles.length < st.length) { const t = el('div', { class: 'tile' }); tiles.push(t); f.append(t); } grid.append(f); }
        while (tiles.length > st.length) tiles.pop().remove();
        let busy = 0;
        for (let i = 0; i < st.length; i++) {
          const name = WSTATE[st[i]] || 'stopped'; if (name === 'busy') busy++;
          const cls = 'tile s-' + name; if (tiles[i].className !== cls) tiles[i].className = cls;
          const title = workerId(i + 1) + ' ' + name + (tk[i] ? ' · ' + taskId(tk[i]) : '');
          if (tiles[i].title !== title) { tiles[i].title = title; tiles[i].dataset.task = tk[i] || ''; }
        }
        setText(node('workers-title'), (s.cluster ? 'Workers of node ' + s.cluster.node + ' (this node): ' : 'Workers: ') + st.length + ' (' + busy + ' busy)');
        if (window.cortexFirstRenderMs === undefined) window.cortexFirstRenderMs = performance.now();
        noteDraw(s.seq);
        if (document.activeElement !== scaleIn && !scaleIn.value) scaleIn.value = s.pool_size;
        if (s.cluster) drawCluster(s.cluster, s.now_ms);
      }
      // Cluster mode: every node with its lease, epoch, load and the tasks running on it (the
      // daemon reads them from PostgreSQL about once a second). A node's row is made once and
      // its cells written only when they changed (the lease moves every second).
      let clusterNames = '';
      function drawCluster(c, nowMs) {
        const t = c.tasks || {}, body = $('cluster-nodes');
        $('cluster-card').hidden = false; setText($('budget-title'), 'Token budget (cluster)');
        setText($('tasks-title'), c.counts ? 'Tasks (cluster)' : 'Tasks on this node'); if (c.counts) setText($('queue-title'), 'Queue by priority (cluster)');
        drawNodeGrids(c);
        if (c.pending) { setText($('cluster-title'), 'Cluster: ' + c.note + ' · this page is served by ' + c.node + (c.database === 'unreachable' ? ' · POSTGRESQL UNREACHABLE for ' + dur(nowMs - c.unreachable_since_ms) : '')); return; }
        setText($('cluster-title'), 'Cluster: ' + c.nodes.length + ' node' + (c.nodes.length === 1 ? '' : 's') + ' · ' + fmt(t.queued) + ' queued, ' + fmt(t.running) + ' running, ' + fmt(t.done) + ' done · this page is served by ' + c.node + (c.database === 'unreachable' ? ' · POSTGRESQL UNREACHABLE for ' + dur(nowMs - c.unreachable_since_ms) + ' (last known state; new submits refused)' : ''));
        const names = c.nodes.map((n) => n.name).join('\n');
        if (names !== clusterNames) {
          clusterNames = names;
          body.replaceChildren(...c.nodes.map((n) => el('tr', { 'data-node': n.name }, ...[0, 0, 0, 0, 0, 0, 0, 0, 0].map(() => el('td')))));
        }
        c.nodes.forEach((n, i) => {
          const td = body.rows[i].cells;
          setText(td[0], n.name + (n.name === c.node ? ' (this node)' : ''));
          const st = td[1].firstChild || td[1].appendChild(el('span')), cls = 'st st-' + (n.state === 'alive' ? 'running' : 'failed');
          if (st.className !== cls) st.className = cls; setText(st, n.state);
          [n.epoch, n.lease_left_s < 0 ? 'lapsed ' + Math.round(-n.lease_left_s) + ' s ago' : n.lease_left_s + ' s', n.host, n.pid, n.workers, n.running].forEach((v, k) => setText(td[k + 2], v == null ? '' : v));
          const ids = (n.tasks || []).slice(0, 20), key = ids.join(' ') + ((n.tasks || []).length > 20 ? ' …' : '');
          if (td[8].dataset.key !== key) { td[8].dataset.key = key; td[8].replaceChildren(...ids.flatMap((id) => [el('a', { href: '/tasks/' + id, text: id }), ' ']), key.endsWith('…') ? '…' : ''); }
        });
      }
      // The other nodes' workers, a labelled grid each (as their web views last answered), or
      // why a node cannot be read. Tiles are made once per node and only restyled.
      const grids = {};
      function drawNodeGrids(c) {
        const box = $('node-grids');
        for (const g of (c.workers || []).filter((g) => g.node !== c.node)) {
          let d = grids[g.node];
          if (!d) { d = grids[g.node] = { head: el('h3', { class: 'node-head' }), grid: el('div', { class: 'grid' }), tiles: [] }; box.append(el('div', { class: 'node-grid', 'data-node': g.node }, d.head, d.grid)); }
          const st = g.ok && g.workers ? g.workers.states : '', tk = g.ok && g.workers ? g.workers.tasks : [];
          while (d.tiles.length < st.length) { const t = el('div', { class: 'tile' }); d.tiles.push(t); d.grid.append(t); }
          while (d.tiles.length > st.length) d.tiles.pop().remove();
          let busy = 0;
          for (let i = 0; i < st.length; i++) {
            const name = WSTATE[st[i]] || 'stopped'; if (name === 'busy') busy++;
            const cls = 'tile s-' + name; if (d.tiles[i].className !== cls) d.tiles[i].className = cls;
            const title = g.node + ' · ' + workerId(i + 1) + ' ' + name + (tk[i] ? ' · ' + taskId(tk[i]) : '');
            if (d.tiles[i].title !== title) { d.tiles[i].title = title; d.tiles[i].dataset.task = tk[i] || ''; }
          }
          setText(d.head, 'Workers of node ' + g.node + ': ' + (g.ok ? st.length + ' (' + busy + ' busy)' : g.note || 'not read yet'));
          d.head.className = 'node-head' + (g.ok ? '' : ' err');
        }
      }
      $('node-grids').addEventListener('click', (e) => { const t = e.target.dataset && e.target.dataset.task; if (t) location.href = '/tasks/' + taskId(t); });
      grid.addEventListener('click', (e) => { const t = e.target.dataset && e.target.dataset.task; if (t) location.href = '/tasks/' + taskId(t); });
      // Cluster mode (`nodes`): each other node's charts in a row of their own, as its web view
      // last answered (percentiles of different nodes cannot be added up).
      const charts = {};
      function series(d) {
        draw('chart-rate', [[d.tasks_per_s, 'lrate']], 'tasks/s');
        draw('chart-latency', [[d.latency_p50_ms, 'l50'], [d.latency_p95_ms, 'l95'], [d.latency_p99_ms, 'l99']], 'ms');
        if (!d.nodes) return;
        setText($('rate-title'), 'Throughput of this node (tasks/s, 5 s windows, last 5 min)'); setText($('latency-title'), 'Latency on this node, submit → finish (ms): p50 · p95 · p99');
        for (const n of d.nodes) {
          let c = charts[n.node];
          if (!c) {
            c = charts[n.node] = { rate: el('h2'), lat: el('h2') };
            $('node-charts').append(el('div', { class: 'row2', 'data-node': n.node }, el('div', { class: 'card' }, c.rate, chart('chart-rate-' + n.node)), el('div', { class: 'card' }, c.lat, chart('chart-latency-' + n.node))));
          }
          setText(c.rate, 'Throughput of node ' + n.node + (n.series ? ' (tasks/s)' : ': ' + n.note)); setText(c.lat, 'Latency on node ' + n.node + (n.series ? ' (ms): p50 · p95 · p99' : ''));
          if (!n.series) continue;
          draw('chart-rate-' + n.node, [[n.series.tasks_per_s, 'lrate']], 'tasks/s');
          draw('chart-latency-' + n.node, [[n.series.latency_p50_ms, 'l50'], [n.series.latency_p95_ms, 'l95'], [n.series.latency_p99_ms, 'l99']], 'ms');
        }
      }
      api('/api/status').then((s) => { if (s.ok) { status(s); series(s.series); } });
      groups.refresh();
      stream('status=1&events=0', { status, series, groups: groups.draw });
    }
    function chart(id) {
      const ns = 'http://www.w3.org/2000/svg';
      const s = document.createElementNS(ns, 'svg'); s.setAttribute('class', 'chart'); s.setAttribute('id', id);
      s.setAttribute('viewBox', '0 0 600 140'); s.setAttribute('preserveAspectRatio', 'none'); return s;
    }
    // A chart is redrawn only when its numbers changed: the series moves one 5 s step at a time
    // and arrives every 2 s, and a rebuilt chart costs a layout, a paint and a frame.
    function draw(id, lines, unit) {
      const s = $(id); if (!s) return;
      const key = unit + JSON.stringify(lines.map(([v]) => v));
      if (s.cortexKey === key) return; s.cortexKey = key;
      const ns = 'http://www.w3.org/2000/svg';
      let max = 0; for (const [v] of lines) for (const y of v) if (y != null && y > max) max = y;
      max = max <= 0 ? 1 : max * 1.1;
      const kids = [];
      const mk = (tag, a) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(a)) e.setAttribute(k, v); return e; };
      kids.push(mk('line', { x1: 40, y1: 130, x2: 600, y2: 130, class: 'axis' }));
      const lab = mk('text', { x: 2, y: 12 }); lab.textContent = (max >= 100 ? Math.round(max) : max.toFixed(1)) + ' ' + unit; kids.push(lab);
      const zero = mk('text', { x: 2, y: 130 }); zero.textContent = '0'; kids.push(zero);
      for (const [v, cls] of lines) {
        const n = v.length; let pts = [];
        const flush = () => {
          if (pts.length === 1) { const [x, y] = pts[0].split(','); kids.push(mk('circle', { cx: x, cy: y, r: 2.5, class: cls + ' dot' })); }
          else if (pts.length) kids.push(mk('polyline', { points: pts.join(' '), class: cls }));
          pts = [];
        };
        for (let i = 0; i < n; i++) {
          if (v[i] == null) { flush(); continue; }
          pts.push((40 + 560 * i / Math.max(1, n - 1)).toFixed(1) + ',' + (130 - 120 * v[i] / max).toFixed(1));
        }
        flush();
      }
      s.replaceChildren(...kids);
    }

    """#
}
