extension Pages {
  // The client, continued (Script.swift has the helpers and the overview): the task list, the
  // task page, the events page, and the router that draws the page the path names.
  static let scriptPagesText = #"""
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
      // A row is the id (a link), the state (a badge) and one line of fixed-width columns, the
      // title last (cut with "…" at the row's end); `W` are those columns' widths in characters.
      let W = [10, 12, 12, 12, 9];
      const line = (vals) => vals.map((v, i) => { v = String(v == null ? '' : v); const w = W[i]; return w ? (v.length >= w ? v.slice(0, w - 2) + '… ' : v.padEnd(w)) : v; }).join('');
      const headRest = el('span', { class: 'rest' });
      const heads = () => setText(headRest, line(['priority', 'type', 'worker', 'submitted', 'ran', 'what']));
      heads();
      const body = el('div', { id: 'task-rows', class: 'rows' });
      const info = el('span', { id: 'task-total' }), held = el('span', { id: 'task-held', class: 'msg' });
      const prev = el('button', { text: '‹ newer', onclick: () => { f.offset = Math.max(0, f.offset - 50); load(); } });
      const next = el('button', { text: 'older ›', onclick: () => { f.offset += 50; load(); } });
      const apply = () => { f.state = stateSel.value; f.priority = prioSel.value; f.type = typeIn.value.trim(); f.label = labelIn.value.trim(); f.q = qIn.value.trim(); f.offset = 0; load(); };
      for (const i of [stateSel, prioSel]) i.addEventListener('change', apply);
      for (const i of [typeIn, labelIn, qIn]) i.addEventListener('keydown', (e) => { if (e.key === 'Enter') apply(); });
      main.append(el('div', { class: 'card' },
        el('div', { class: 'filters' }, stateSel, prioSel, typeIn, labelIn, qIn, el('button', { text: 'Filter', onclick: apply })),
        el('div', { class: 'task-list' }, el('div', { class: 'trow thead' }, el('span', { text: 'id' }), el('span', { text: 'state' }), headRest), body),
        el('div', { class: 'pager' }, prev, next, info, held)));
      // A click on a row opens its task (the id is a link too), unless it ends a text selection.
      body.addEventListener('click', (e) => {
        const r = e.target.closest('.trow');
        if (r && r.dataset.id && !e.target.closest('a') && getSelection().isCollapsed) location.href = '/tasks/' + r.dataset.id;
      });
      // Rows of fixed size (`contain: strict`), made once: a new answer rewrites three text nodes
      // and a class per row, so no element is made and no row's layout reaches another. At 1,000
      // tasks/s every row changes in every answer: such a redraw costs a software-rendered
      // Chromium about 17 ms of CPU (a table of 400 cells 29 ms; docs/bench/web.md, seventh round).
      const rows = [];
      function row() {
        const t = [0, 0, 0].map(() => document.createTextNode(''));
        const a = el('a', {}, t[0]), st = el('span', { class: 'st' }, t[1]);
        const tr = el('div', { class: 'trow' }, a, el('span', {}, st), el('span', { class: 'rest' }, t[2]));
        return { tr, a, st, t, id: null };
      }
      const put = (t, v) => { if (t.data !== v) t.data = v; };
      let shown = null, fillAll = null;
      function draw(j, all) {
        shown = j; clearTimeout(fillAll); if (!all) fillAll = setTimeout(() => draw(shown, true), 500);
        // Cluster mode: the worker column names the node too.
        const ww = j.tasks.some((t) => t.node) ? 24 : 12;
        if (W[2] !== ww) { W[2] = ww; heads(); for (const r of rows) put(r.t[2], ''); }
        while (rows.length > j.tasks.length) rows.pop().tr.remove();
        if (rows.length < j.tasks.length) { const fr = document.createDocumentFragment(); while (rows.length < j.tasks.length) { const r = row(); rows.push(r); fr.append(r.tr); } body.append(fr); }
        const now = Date.now(), n = j.tasks.length;
        // While the list moves, only the rows in the window (and two either side) are written:
        // the others are emptied once and filled when scrolled to, or when the list has been
        // still for half a second (so find-in-page and paging see every row).
        let from = 0, to = n;
        if (!all) { const top = body.getBoundingClientRect().top; from = Math.max(0, Math.floor(-top / 30) - 2); to = Math.min(n, Math.ceil((innerHeight - top) / 30) + 2); }
        for (let i = 0; i < n; i++) {
          if (i >= from && i < to) continue;
          const r = rows[i]; if (r.id === null) continue;
          r.id = null; delete r.tr.dataset.id; put(r.t[0], ''); put(r.t[1], ''); put(r.t[2], ''); r.st.className = 'st';
        }
        j.tasks.slice(from, to).forEach((t, k) => {
          const r = rows[from + k];
          if (r.id !== t.id) { r.id = t.id; r.tr.dataset.id = t.id; r.a.href = '/tasks/' + t.id; put(r.t[0], t.id); }
          const cls = 'st st-' + t.state; if (r.st.className !== cls) r.st.className = cls;
          put(r.t[1], t.state);
          put(r.t[2], line([t.priority, t.type, (t.node ? t.node + ' · ' : '') + (t.worker_id || ''), t.submitted_ms ? clock(t.submitted_ms) : '',
            t.started_ms ? dur((t.ended_ms || now) - t.started_ms) : '', t.title]));
        });
        // In cluster mode the list is every node's, newest first; `total_at_least`: there may be more.
        setText(info, (j.total ? (j.offset + 1) + '–' + (j.offset + j.tasks.length) + ' of ' : '') + fmt(j.total) + (j.total_at_least ? '+' : '') + ' matching' + (j.scope === 'cluster' ? ' across the cluster' : ''));
        prev.disabled = j.offset === 0; next.disabled = j.offset + j.tasks.length >= j.total && !j.total_at_least;
        noteDraw(j.seq);
      }
      // The newest answer is drawn in the next frame; answers that come meanwhile replace it.
      // While text in the list is selected the list holds still (the newest answer waits), so
      // a row can be copied while tasks stream past.
      let latest = null;
      const selecting = () => { const s = getSelection(); return !s.isCollapsed && s.rangeCount > 0 && body.contains(s.getRangeAt(0).commonAncestorContainer); };
      const redraw = perFrame(() => {
        if (!latest) return;
        if (selecting()) { setText(held, 'held while text is selected'); return; }
        const j = latest; latest = null; setText(held, ''); draw(j);
      }, 0);
      const show = (j) => { latest = j; redraw(); };
      document.addEventListener('selectionchange', () => { if (latest && !selecting()) redraw(); });
      window.addEventListener('scroll', () => { if (shown && !latest) { latest = shown; redraw(); } }, { passive: true });
      // The list follows its answer as the server pushes it (`follow=1`: at most every 150 ms
      // while its tasks change), with no request per redraw; in cluster mode too (the server
      // asks the cluster's list again as any node's tasks move, once for every page that
      // follows the same list). A list the server could not read (the database unreachable)
      // says why and keeps the rows it had.
      let follow = null, gen = 0;
      async function load() {
        const q = new URLSearchParams();
        for (const k of ['state', 'type', 'priority', 'label', 'q']) if (f[k]) q.set(k, f[k]);
        if (f.offset) q.set('offset', f.offset);
        // The address follows the filters, written only when it changes: each replaceState has the
        // browser process update its own window (about 0.02 of a core at one reload a second).
        const here = '/tasks' + (q.toString() ? '?' + q : '');
        if (location.pathname + location.search !== here) history.replaceState(null, '', here);
        q.set('limit', 50);
        const mine = ++gen;
        if (follow) { follow.close(); follow = null; }
        latest = null;  // an answer of the previous filter or page not drawn yet is not drawn
        const j = await api('/api/tasks?' + q);
        if (mine !== gen) return;  // a newer filter or page was asked for meanwhile
        // A refused filter empties the list: rows of the previous filter under the new one's
        // error read as its answer.
        if (!j.ok) { latest = shown = null; clearTimeout(fillAll); info.textContent = j.error; while (rows.length) rows.pop().tr.remove(); prev.disabled = next.disabled = true; return; }
        show(j);
        follow = stream(q + '&follow=1', { tasks: (a) => { if (mine !== gen) return; if (a.ok === false) setText(info, a.error); else show(a); } }, '/api/tasks');
      }
      load();
    }

    // ---------- one task ----------
    function task(main, id) {
      const msg = el('span', { id: 'action-msg', class: 'msg' });
      const said = { cancel: (j) => Object.entries(j.results || {}).map(([k, v]) => k + ': ' + v).join(', ') || 'cancel sent', retry: (j) => 'submitted as ' + (j.ids || []).join(', '), priority: (j) => 'priority is now ' + ((j.task || {}).priority || prioSel.value) };
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
      let offset = 0, active = true, esc = '';
      // A terminal's control sequences (colours, cursor moves: ESC [ … letter, ESC ] … BEL) are
      // not text: they are left out, as a terminal would not print them. One cut by the end of a
      // read (under 256 characters) waits for the rest in the next.
      const plain = (t) => {
        t = esc + t; esc = '';
        const cut = t.search(/\x1b(\[[0-?]*[ -\/]*|\][^\x07\x1b]*(\x1b)?)?$/);
        if (cut >= 0 && t.length - cut < 256) { esc = t.slice(cut); t = t.slice(0, cut); }
        return t.replace(/\x1b(\[[0-?]*[ -\/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[0-~])/g, '');
      };
      // As `cortex show` says it: the place in the queue and when it starts, or what holds it
      // (held_by: a pause, its group's limit or rate, the budget, the workers kept for critical tasks).
      const queueLine = (t) => t.queue_position == null ? null : 'position ' + t.queue_position + '; estimated start '
        + (t.held_by || (t.estimated_start_in_ms != null ? 'in about ' + dur(t.estimated_start_in_ms) : 'unknown (no estimate yet)'));
      // As `cortex show` says it: the dependencies that hold it, each with its state.
      const waitingLine = (t) => (t.waiting_on || []).length ? 'dependencies: ' + t.waiting_on.map((d) => d.id + ' (' + d.state + ')').join(', ')
        : t.waiting === 'unclaimed' ? 'to be claimed by a node' : t.waiting;
      async function load() {
        const j = await api('/api/tasks/' + id);
        if (!j.ok) { title.textContent = id + ': ' + j.error; return; }
        const t = j.task; active = !['succeeded', 'failed', 'cancelled', 'timed_out', 'rejected'].includes(t.state);
        title.textContent = t.id + ' · ' + t.state;
        const rows = [['state', t.state], ['priority', t.priority], ['type', t.type], ['what', t.title], ['attempt', t.not_started ? 'not started yet; ' + (t.max_attempts || 1) + ' allowed' : t.attempt + ' of ' + (t.max_attempts || 1)],
          ['node', t.node], ['worker', t.worker_id], ['submitted', t.submitted_ms && new Date(t.submitted_ms).toLocaleString()], ['queue wait', t.queue_wait_ms != null ? dur(t.queue_wait_ms) : null],
          ['ran', t.run_ms != null ? dur(t.run_ms) : t.started_ms ? dur(Date.now() - t.started_ms) + ' so far' : null],
          ['tokens', fmt(t.tokens_used) + ' of ' + fmt(t.token_budget)], ['queue', queueLine(t)], ['waiting', waitingLine(t)],
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
        if (j.ok && j.text) { out.textContent += plain(j.text); offset = j.next_offset; if (out.textContent.length > 1000000) out.textContent = out.textContent.slice(-500000); out.scrollTop = out.scrollHeight; }
        if (j.ok && j.next_offset < j.size && j.next_offset > j.offset) setTimeout(output, 10); else if (active) setTimeout(output, 1000);
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
