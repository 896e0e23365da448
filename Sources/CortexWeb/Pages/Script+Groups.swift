extension Pages {
  // The overview's Groups card (SPEC §15): each group's state (paused, at its parallel limit,
  // or starting tasks), running / limit and queued, with Pause or Resume. The card shows only
  // when a group other than `default` exists or one is paused or limited (`shown` in the
  // answer). It is drawn from `GET /api/groups` and then from the status stream's `groups`
  // messages (sent when they change); a click is `POST /api/groups/NAME/pause|resume`, the
  // daemon's logged decision as `cortex pause NAME`. Rows are made when the set of groups
  // changes; a cell is written only when its text changed. In cluster mode a group the cluster
  // pauses or limits shows the whole cluster's counts (its limit holds for every node).
  static let scriptGroupsText = #"""
    function groupsCard() {
      const body = el('tbody', { id: 'group-rows' }), msg = el('span', { id: 'groups-msg', class: 'msg' });
      // The parallel limit of one group, as `cortex group set NAME --parallel N` (0: no limit).
      const limitGroup = el('select', { id: 'limit-group' }), limitIn = el('input', { id: 'limit-input', type: 'number', min: '0', placeholder: '0 = none' });
      limitIn.style.width = '90px';
      const limitBtn = el('button', { id: 'limit-btn', text: 'Set limit', title: 'cortex group set GROUP --parallel N', onclick: async () => {
        const name = limitGroup.value;
        if (!name || !/^\s*\d+\s*$/.test(limitIn.value)) { msg.className = 'msg err'; setText(msg, 'choose a group and type its limit: a whole number, 0 for none'); return; }
        setText(msg, 'setting ' + name + '…');
        const j = await api('/api/groups/' + encodeURIComponent(name) + '/parallel', { parallel: Number(limitIn.value) });
        msg.className = 'msg' + (j.ok ? '' : ' err');
        setText(msg, j.ok ? 'group ' + name + ': limit ' + (Number(limitIn.value) > 0 ? limitIn.value : 'none') : j.error);
        refresh();
      } });
      const card = el('div', { class: 'card', id: 'groups-card', hidden: '' }, el('h2', { id: 'groups-title', text: 'Groups' }),
        el('table', {}, el('thead', {}, el('tr', {}, ...['group', 'state', 'running / limit', 'queued', ''].map((h) => el('th', { text: h })))), body),
        el('div', { class: 'legend' }, el('span', {}, limitGroup, ' ', limitIn, ' ', limitBtn), msg));
      const STATE = { paused: ['paused', 'st st-cancelled'], at_limit: ['at limit', 'st st-assigned'], running: ['running', 'st st-running'] };
      let names = null, latest = null;
      async function act(name, resume) {
        msg.className = 'msg'; setText(msg, (resume ? 'resuming ' : 'pausing ') + name + '…');
        const j = await api('/api/groups/' + encodeURIComponent(name) + '/' + (resume ? 'resume' : 'pause'), {});
        msg.className = 'msg' + (j.ok ? '' : ' err');
        setText(msg, j.ok ? 'group ' + name + (resume ? ' resumed' : ' paused') : j.error);
        refresh();
      }
      body.addEventListener('click', (e) => { const b = e.target.closest('button[data-group]'); if (b) act(b.dataset.group, b.dataset.paused === '1'); });
      const redraw = perFrame(() => paint(latest), 150);
      function draw(g) { latest = g; redraw(); }
      function refresh() { api('/api/groups').then((g) => { if (g.ok) draw(g); }); }
      function paint(g) {
        if (!g || !g.shown) { card.hidden = true; return; }
        card.hidden = false;
        setText($('groups-title'), 'Groups' + (g.queue_paused ? ' · THE WHOLE QUEUE IS PAUSED: nothing new starts in any group (cortex resume)' : ''));
        const key = g.groups.map((r) => r.name).join('\n');
        if (key !== names) {
          names = key;
          body.replaceChildren(...g.groups.map((r) => el('tr', { 'data-group': r.name }, el('td'), el('td', {}, el('span')), el('td'), el('td'),
            el('td', {}, el('button', { 'data-group': r.name })))));
          const chosen = limitGroup.value;
          limitGroup.replaceChildren(...g.groups.map((r) => el('option', { value: r.name, text: r.name })));
          if (g.groups.some((r) => r.name === chosen)) limitGroup.value = chosen;
        }
        g.groups.forEach((r, i) => {
          const td = body.rows[i].cells, c = r.cluster, [word, cls] = STATE[r.state] || [r.state, 'st'];
          setText(td[0], r.name);
          const st = td[1].firstChild; if (st.className !== cls) st.className = cls; setText(st, word);
          const running = c ? c.running : r.running, queued = c ? c.queued : r.queued;
          setText(td[2], fmt(running) + ' / ' + (r.parallel == null ? '–' : fmt(r.parallel)) + (c ? ' (cluster)' : ''));
          setText(td[3], fmt(queued) + (c ? ' (cluster)' : ''));
          const title = c ? 'the whole cluster; this node: ' + r.running + ' running, ' + r.queued + ' queued' : '';
          if (td[2].title !== title) { td[2].title = title; td[3].title = title; }
          const b = td[4].firstChild, p = r.paused ? '1' : '0';
          if (b.dataset.paused !== p) { b.dataset.paused = p; setText(b, r.paused ? 'Resume' : 'Pause'); b.title = (r.paused ? 'cortex resume ' : 'cortex pause ') + r.name; }
        });
      }
      return { card, draw, refresh };
    }

    """#
}
