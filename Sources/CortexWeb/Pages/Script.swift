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
    // Milliseconds from an event's timestamp to the moment it is on the page (read by the benchmark).
    window.cortexLatency = [];
    function noteLatency(ev) {
      const t = Date.parse(ev.ts);
      if (!isNaN(t)) { window.cortexLatency.push(Date.now() - t); if (window.cortexLatency.length > 20000) window.cortexLatency.splice(0, 10000); }
    }
    // When the page drew which log seq (the overview's status, the task list's answer): the
    // benchmark maps each event's seq to the first draw that showed it. Bounded like cortexLatency.
    window.cortexDraws = [];
    function noteDraw(seq) {
      if (seq == null) return;
      window.cortexDraws.push([Date.now(), seq]); if (window.cortexDraws.length > 20000) window.cortexDraws.splice(0, 10000);
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
    const unreachable = () => 'no answer from the daemon at ' + location.host + ': it is stopped, or it restarted and serves another address (cortex status says which; cortex start prints the address)';
    // Why the page is not live, in words above it (empty: it is): what is drawn is as of `since`.
    let downSince = null;
    function connection(ok, why) {
      const note = $('conn-note');
      if (ok) { downSince = null; note.hidden = true; setText(note, ''); return; }
      if (downSince === null) downSince = Date.now();
      setText(note, 'Not live since ' + clock(downSince) + ' (what the page shows is as of then): ' + why);
      note.hidden = false;
    }
    function stream(query, handlers) {
      let es = null, last = null, closed = false, down = false;
      const open = () => {
        const q = query + '&batch=1' + (last != null ? '&since=' + last : '');
        es = new EventSource('/api/events?' + q);
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
      main.append(
        el('div', { class: 'cards' },
          el('div', { class: 'card' }, el('h2', { id: 'tasks-title', text: 'Tasks' }), counts),
          el('div', { class: 'card' }, el('h2', { id: 'queue-title', text: 'Queue by priority' }), prio),
          el('div', { class: 'card' }, el('h2', { id: 'budget-title', text: 'Token budget' }), budgetBar, el('div', {}, budget)),
          el('div', { class: 'card' }, el('h2', { text: 'Daemon' }), health)),
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
          [n.epoch, n.lease_left_s + ' s', n.host, n.pid, n.workers, n.running].forEach((v, k) => setText(td[k + 2], v == null ? '' : v));
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
      stream('status=1&events=0', { status, series });
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

    // ---------- tasks ----------
    function tasks(main) {
      const p = new URLSearchParams(location.search);
      const f = { state: p.get('state') || '', type: p.get('type') || '', priority: p.get('priority') || '', label: p.get('label') || '', q: p.get('q') || '', offset: Number(p.get('offset') || 0) };
      const stateSel = el('select', { id: 'f-state' }, el('option', { value: '', text: 'any state' }), el('option', { value: 'active', text: 'active' }), el('option', { value: 'done', text: 'done' }), ...STATES.map((s) => el('option', { value: s, text: s })));
      const prioSel = el('select', { id: 'f-priority' }, el('option', { value: '', text: 'any priority' }), ...['critical', 'high', 'medium', 'low'].map((s) => el('option', { value: s, text: s })));
      const typeIn = el('input', { id: 'f-type', placeholder: 'type' });
      const labelIn = el('input', { id: 'f-label', placeholder: 'label key=value' });
      const qIn = el('input', { id: 'f-q', placeholder: 'search' });
      stateSel.value = f.state; prioSel.value = f.priority; typeIn.value = f.type; labelIn.value = f.label; qIn.value = f.q;
      const body = el('tbody', { id: 'task-rows' });
      const info = el('span', { id: 'task-total' });
      const prev = el('button', { text: '‹ newer', onclick: () => { f.offset = Math.max(0, f.offset - 50); load(); } });
      const next = el('button', { text: 'older ›', onclick: () => { f.offset += 50; load(); } });
      const apply = () => { f.state = stateSel.value; f.priority = prioSel.value; f.type = typeIn.value.trim(); f.label = labelIn.value.trim(); f.q = qIn.value.trim(); f.offset = 0; load(); };
      for (const i of [stateSel, prioSel]) i.addEventListener('change', apply);
      for (const i of [typeIn, labelIn, qIn]) i.addEventListener('keydown', (e) => { if (e.key === 'Enter') apply(); });
      main.append(el('div', { class: 'card' },
        el('div', { class: 'filters' }, stateSel, prioSel, typeIn, labelIn, qIn, el('button', { text: 'Filter', onclick: apply })),
        el('table', { class: 'task-list' }, el('thead', {}, el('tr', {}, ...['id', 'state', 'priority', 'type', 'what', 'worker', 'submitted', 'ran'].map((h) => el('th', { text: h })))), body),
        el('div', { class: 'pager' }, prev, next, info)));
      // While tasks stream in, a list that shifts (a new task on top moves every row down)
      // rewrites most of its 400 cells, about 40 ms of a software-rendered browser's CPU
      // (docs/bench/web.md: 0.09 of a core at one such redraw a second, 0.045 at one every 2 s).
      // So a live reload that would shift the rows is drawn at most every 2 s; one that only
      // changes cells in place (a task on the page starting or finishing) is drawn at once.
      let lastShift = -1e9, deferred = null;
      async function load(live) {
        const q = new URLSearchParams();
        for (const k of ['state', 'type', 'priority', 'label', 'q']) if (f[k]) q.set(k, f[k]);
        if (f.offset) q.set('offset', f.offset);
        // The address follows the filters, written only when it changes: each replaceState has the
        // browser process update its own window (about 0.02 of a core at one reload a second).
        const here = '/tasks' + (q.toString() ? '?' + q : '');
        if (location.pathname + location.search !== here) history.replaceState(null, '', here);
        q.set('limit', 50);
        const j = await api('/api/tasks?' + q);
        // A refused filter empties the list: rows of the previous filter under the new one's
        // error read as its answer.
        if (!j.ok) { info.textContent = j.error; while (body.lastElementChild) body.lastElementChild.remove(); prev.disabled = next.disabled = true; return; }
        const shifts = body.childElementCount !== j.tasks.length || j.tasks.some((t, i) => body.rows[i].dataset.id !== t.id);
        if (shifts && live) {
          const wait = lastShift + 2000 - performance.now();
          if (wait > 0) { if (!deferred) deferred = setTimeout(() => { deferred = null; reload(); }, wait); return; }
        }
        if (shifts) lastShift = performance.now();
        // Rows are made once and reused: a new list writes only the cells whose text changed
        // (no element is created or replaced once the page is full, so the table's style and
        // layout are not redone from scratch while tasks stream in).
        while (body.childElementCount > j.tasks.length) body.lastElementChild.remove();
        while (body.childElementCount < j.tasks.length) {
          const tr = el('tr', {}, el('td', {}, el('a')), el('td', {}, el('span', { class: 'st' })), ...[0, 0, 0, 0, 0, 0].map(() => el('td')));
          tr.cells[4].className = 'title'; body.append(tr);
        }
        j.tasks.forEach((t, i) => {
          const tr = body.rows[i], c = tr.cells, a = c[0].firstChild, st = c[1].firstChild;
          if (tr.dataset.id !== t.id) { tr.dataset.id = t.id; a.href = '/tasks/' + t.id; setText(a, t.id); }
          const cls = 'st st-' + t.state; if (st.className !== cls) st.className = cls;
          setText(st, t.state); setText(c[2], t.priority || ''); setText(c[3], t.type || ''); setText(c[4], t.title || '');
          setText(c[5], (t.node ? t.node + ' · ' : '') + (t.worker_id || '')); setText(c[6], t.submitted_ms ? clock(t.submitted_ms) : '');
          setText(c[7], t.started_ms ? dur((t.ended_ms || Date.now()) - t.started_ms) : '');
        });
        // In cluster mode the list is every node's, newest first; `total_at_least`: there may be more.
        setText(info, (j.total ? (j.offset + 1) + '–' + (j.offset + j.tasks.length) + ' of ' : '') + fmt(j.total) + (j.total_at_least ? '+' : '') + ' matching' + (j.scope === 'cluster' ? ' across the cluster' : ''));
        prev.disabled = j.offset === 0; next.disabled = j.offset + j.tasks.length >= j.total && !j.total_at_least;
        noteDraw(j.seq);
      }
      load();
      // The list follows the task events, but only the newest of each 50 ms tick (the server
      // counts the rest; at 1,000 tasks/s that is 5,000 events a second it need not parse): each
      // message asks for a reload, one at a time; one that comes meanwhile asks for one more.
      let loading = false, again = false;
      async function reload() {
        if (deferred) return;  // a shift is waiting for its turn; it reads the list afresh then
        if (loading) { again = true; return; }
        loading = true;
        try { await load(true); } finally { loading = false; }
        if (again) { again = false; reload(); }
      }
      stream('type=task.&newest=1', { logs: () => reload(), reopened: () => reload() });
    }

    // ---------- one task ----------
    function task(main, id) {
      const msg = el('span', { id: 'action-msg', class: 'msg' });
      const said = { cancel: (j) => 'cancel: ' + JSON.stringify(j.results || j), retry: (j) => 'submitted as ' + (j.ids || []).join(', '), priority: (j) => 'priority is now ' + ((j.task || {}).priority || prioSel.value) };
      const act = async (what, body) => { msg.className = 'msg'; msg.textContent = what + '…'; const j = await api('/api/tasks/' + id + '/' + what, body || {});
        msg.className = 'msg' + (j.ok ? '' : ' err'); msg.textContent = j.ok ? said[what](j) : j.error; load(); };
      const cancelBtn = el('button', { id: 'cancel-btn', class: 'danger', text: 'Cancel', onclick: () => act('cancel') });
      const retryBtn = el('button', { id: 'retry-btn', text: 'Retry', onclick: () => act('retry') });
      const prioSel = el('select', { id: 'priority-select' }, ...['critical', 'high', 'medium', 'low'].map((p) => el('option', { value: p, text: p })));
      const prioBtn = el('button', { id: 'priority-btn', text: 'Set priority', onclick: () => act('priority', { priority: prioSel.value }) });
      const facts = el('dl', { class: 'kv', id: 'task-facts' });
      const spec = el('pre', { id: 'task-spec' });
      const hist = el('tbody', { id: 'task-history' });
      const out = el('pre', { id: 'task-output' }), outNote = el('p', { id: 'output-note', class: 'msg err' });
      const title = el('h2', { id: 'task-title', text: id });
      main.append(el('div', { class: 'card' }, title, el('div', { class: 'filters' }, cancelBtn, retryBtn, prioSel, prioBtn, msg), facts),
        el('div', { class: 'row2' },
          el('div', { class: 'card' }, el('h2', { text: 'History' }), el('table', {}, el('thead', {}, el('tr', {}, ...['seq', 'time', 'event', 'worker', 'reason'].map((h) => el('th', { text: h })))), hist)),
          el('div', { class: 'card' }, el('h2', { text: 'Spec' }), spec)),
        el('div', { class: 'card' }, el('h2', { text: 'Output' }), outNote, out));
      let offset = 0, active = true;
      async function load() {
        const j = await api('/api/tasks/' + id);
        if (!j.ok) { title.textContent = id + ': ' + j.error; return; }
        const t = j.task; active = !['succeeded', 'failed', 'cancelled', 'timed_out', 'rejected'].includes(t.state);
        title.textContent = t.id + ' · ' + t.state;
        const rows = [['state', t.state], ['priority', t.priority], ['type', t.type], ['what', t.title], ['attempt', t.attempt + ' of ' + (t.max_attempts || 1)],
          ['node', t.node], ['worker', t.worker_id], ['submitted', t.submitted_ms && new Date(t.submitted_ms).toLocaleString()], ['queue wait', t.queue_wait_ms != null ? dur(t.queue_wait_ms) : null],
          ['ran', t.run_ms != null ? dur(t.run_ms) : t.started_ms ? dur(Date.now() - t.started_ms) + ' so far' : null],
          ['tokens', fmt(t.tokens_used) + ' of ' + fmt(t.token_budget)], ['queue position', t.queue_position], ['estimated start', t.estimated_start_in_ms != null ? 'in ' + dur(t.estimated_start_in_ms) : null],
          ['exit code', t.exit_code], ['reason', t.reason], ['note', t.detail_note]];
        facts.replaceChildren(...rows.filter(([, v]) => v != null && v !== '').flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]));
        spec.textContent = JSON.stringify(t.spec || {}, null, 2);
        hist.replaceChildren(...(t.history || []).map((h) => el('tr', {}, el('td', { text: h.seq }), el('td', { text: clock(h.ts_ms) }), el('td', { text: h.type }), el('td', { text: h.worker_id || '' }), el('td', { text: h.reason || '' }))));
        cancelBtn.disabled = !active; retryBtn.disabled = !['failed', 'timed_out', 'cancelled'].includes(t.state);
        // Only a queued task's priority can change (cortex edit); the choice shows the current one.
        prioSel.disabled = prioBtn.disabled = t.state !== 'queued';
        // A control that does not apply says why (on hover), not only by being grey.
        const why = (b, text) => { const v = b.disabled ? text : ''; if (b.title !== v) b.title = v; };
        why(cancelBtn, t.id + ' is ' + t.state + ': only a queued or running task can be cancelled');
        why(retryBtn, t.id + ' is ' + t.state + ': only a task that failed, timed out or was cancelled can be retried');
        why(prioBtn, t.id + ' is ' + t.state + ': only a queued task\'s priority can change'); prioSel.title = prioBtn.title;
        if (document.activeElement !== prioSel && t.priority) prioSel.value = t.priority;
      }
      async function output() {
        const j = await api('/api/tasks/' + id + '/output?offset=' + offset);
        // Cluster mode: the output of a task that ran on another node is read from it; a node
        // that cannot be read is named here with the reason, and asked again.
        setText(outNote, j.ok ? (j.node ? 'read from node ' + j.node : '') : j.error);
        if (!j.ok && active !== false) { setTimeout(output, 2000); return; }
        if (j.ok && j.text) { out.textContent += j.text; offset = j.next_offset; if (out.textContent.length > 1000000) out.textContent = out.textContent.slice(-500000); out.scrollTop = out.scrollHeight; }
        if (j.ok && j.next_offset < j.size) setTimeout(output, 10); else if (active) setTimeout(output, 1000);
      }
      load().then(output);
      const reload = throttle(load, 200);
      stream('task=' + id, { log: (ev) => { noteLatency(ev); reload(); }, reopened: reload });
    }

    // ---------- events ----------
    function events(main) {
      const p = new URLSearchParams(location.search);
      const typeSel = el('select', { id: 'f-etype' }, ...[['', 'all events'], ['task.', 'task.*'], ['worker.', 'worker.*'], ['budget.', 'budget.*'], ['daemon.', 'daemon.*'], ['pool.', 'pool.*'],
        ['task.submitted', 'task.submitted'], ['task.started', 'task.started'], ['task.succeeded', 'task.succeeded'], ['task.failed', 'task.failed'], ['task.cancelled', 'task.cancelled']].map(([v, t]) => el('option', { value: v, text: t })));
      const taskIn = el('input', { id: 'f-etask', placeholder: 'task-000123' });
      typeSel.value = p.get('type') || ''; taskIn.value = p.get('task') || '';
      const pause = el('button', { id: 'pause-btn', text: 'Pause' });
      const info = el('span', { id: 'events-info', class: 'msg' });
      // The newest MAX events are lines of ONE text node in a box of fixed size (a log tail in
      // fixed-width columns): a frame changes that node's text and nothing else — no element is
      // created, moved or restyled, and the box's layout cannot reach the rest of the page. Rows
      // as elements cost the renderer a style and layout pass for each one moved, every frame.
      let COLS = [['seq', 9], ['time', 13], ['type', 19], ['task', 13], ['worker', 12], ['reason', 18], ['detail', 0]];
      // Cluster mode: every node's events, a node column, and which nodes cannot be read.
      let me = null, seen = {};
      const note = el('p', { id: 'peer-note', class: 'msg err' });
      const peers = (list) => setText(note, list.filter((n) => !n.ok).map((n) => n.note).join(' · '));
      const line = (vals) => vals.map((v, i) => { const w = COLS[i][1]; v = String(v == null ? '' : v); return w ? (v.length >= w ? v.slice(0, w - 2) + '… ' : v.padEnd(w)) : v; }).join('');
      const body = el('pre', { id: 'event-rows', class: 'elog' });
      const text = document.createTextNode(''); body.append(text);
      main.append(el('div', { class: 'card' }, el('div', { class: 'filters' }, typeSel, taskIn, el('button', { text: 'Filter', onclick: () => restart() }), pause, info),
        note, el('div', { class: 'elog-head', id: 'elog-head', text: line(COLS.map(([h]) => h)) }), body));
      // A click opens the task on the line under the pointer (18 px lines, 6 px padding).
      body.addEventListener('click', (e) => { const i = Math.floor((e.clientY - body.getBoundingClientRect().top + body.scrollTop - 6) / 18); const ev = shown[i]; if (ev && ev.task_id) location.href = '/tasks/' + ev.task_id; });
      // The list holds the newest MAX events (a page open for an hour stays this size). Events
      // that arrive between two frames are drawn together in the next one; each is formatted once.
      const MAX = 100;
      let paused = false, held = [], s = null, pending = [], skipped = 0, shown = [];
      const fmtLine = (ev) => ev.line || (ev.line = line([ev.seq, ...(me ? [ev.node] : []), (ev.ts || '').slice(11, 23), ev.type, ev.task_id, ev.worker_id, ev.reason, ev.detail]));
      // At most ten frames a second: an event waits at most 100 ms more for its frame.
      const redraw = perFrame(() => {
        const list = pending; pending = [];
        if (!list.length) return;
        const fresh = list.slice(-MAX).reverse();
        shown = fresh.length >= MAX ? fresh : fresh.concat(shown.slice(0, MAX - fresh.length));
        draw();
        for (const ev of list) noteLatency(ev);
        if (!paused) setText(info, skipped ? fmt(skipped) + ' events streamed past between frames (pause to hold them)' : '');
      }, 100);
      // While live, only the lines that fit in the box are laid out (shaping text is most of a
      // frame's layout); paused, all MAX, to scroll through.
      let fits = 0;
      const measure = () => { fits = Math.ceil(body.clientHeight / 18) + 1; };
      window.addEventListener('resize', () => { measure(); draw(); });
      function draw() {
        if (fits < 2) measure();
        text.data = shown.slice(0, paused ? MAX : fits).map(fmtLine).join('\n');
      }
      function show(list) {
        // Another node's events carry no resume point: one sent twice (a reconnect) is dropped.
        if (me) list = list.filter((ev) => { const k = ev.node || me; if (seen[k] >= ev.seq) return false; seen[k] = ev.seq; return true; });
        for (const ev of list) pending.push(ev);
        // Faster than anyone can read: only the newest MAX of one frame can be on the page.
        if (pending.length > MAX) { skipped += pending.length - MAX; pending.splice(0, pending.length - MAX); }
        redraw();
      }
      pause.addEventListener('click', () => { paused = !paused; pause.textContent = paused ? 'Resume' : 'Pause'; if (!paused) { show(held); held = []; } else draw(); info.textContent = paused ? 'paused' : ''; });
      async function restart() {
        if (s) s.close(); text.data = ''; shown = []; held = []; pending = []; skipped = 0; seen = {};
        if (me === null) { const st = await api('/api/status'); me = st.node || ''; if (me) { COLS.splice(1, 0, ['node', 8]); setText($('elog-head'), line(COLS.map(([h]) => h))); } }
        const q = new URLSearchParams(); if (typeSel.value) q.set('type', typeSel.value); if (taskIn.value.trim()) q.set('task', taskIn.value.trim());
        history.replaceState(null, '', '/events' + (q.toString() ? '?' + q : ''));
        const j = await api('/api/events/recent?limit=' + MAX + (me ? '&scope=cluster' : '') + '&' + q);
        if (!j.ok) { info.textContent = j.error; return; }
        const evs = j.events; show(evs); if (j.nodes) peers(j.nodes);
        const mine = evs.filter((ev) => !me || (ev.node || me) === me), since = mine.length ? mine[mine.length - 1].seq : 0;
        // The server sends each tick's newest MAX and says how many it left out: at thousands of
        // events a second the rest would only be sent, parsed and dropped here.
        s = stream(q + '&newest=' + MAX + '&since=' + since, { peers, skipped: (n) => { if (!paused) skipped += n; }, logs: (list) => {
          if (!paused) return show(list);
          for (const ev of list) held.push(ev);
          if (held.length > MAX) held.splice(0, held.length - MAX);
          info.textContent = 'paused, ' + held.length + ' held';
        } });
      }
      restart();
    }

    const path = location.pathname;
    const main = $('main');
    if (path === '/') { $('nav-overview').className = 'active'; overview(main); }
    else if (path === '/tasks') { $('nav-tasks').className = 'active'; tasks(main); }
    else if (path.startsWith('/tasks/')) { $('nav-tasks').className = 'active'; task(main, path.slice(7)); }
    else if (path === '/events') { $('nav-events').className = 'active'; events(main); }
    """#
}
