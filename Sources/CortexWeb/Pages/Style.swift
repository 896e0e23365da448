extension Pages {
  static let styleText = """
    :root { --bg: #0f1419; --panel: #182028; --line: #2a3540; --fg: #d8e0e8; --dim: #8a98a6; --accent: #5aa9e6;
      --idle: #3a4a58; --busy: #2f9e5a; --starting: #c9a227; --stopping: #d0782a; --restarting: #c94f4f; --parked: #7d3c98; --stopped: #22282e; }
    * { box-sizing: border-box; }
    body { margin: 0; background: var(--bg); color: var(--fg); font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
    header { display: flex; align-items: center; gap: 24px; padding: 10px 20px; background: var(--panel); border-bottom: 1px solid var(--line); }
    .brand { font-weight: 700; letter-spacing: .04em; }
    nav a { color: var(--dim); text-decoration: none; margin-right: 16px; padding: 4px 0; }
    nav a.active { color: var(--fg); border-bottom: 2px solid var(--accent); }
    .live { margin-left: auto; font-size: 12px; color: var(--dim); }
    .live.on::before { content: "●"; color: var(--busy); margin-right: 6px; }
    .live.off::before { content: "●"; color: var(--restarting); margin-right: 6px; }
    main { padding: 16px 20px; }
    .conn-note { margin: 0; padding: 8px 20px; background: #3a1f22; color: #f0b4b4; border-bottom: 1px solid #6b2f35; }
    h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--dim); margin: 0 0 10px; font-weight: 600; }
    .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 14px; margin-bottom: 14px; }
    .card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
    .kv { display: grid; grid-template-columns: auto 1fr; gap: 3px 12px; }
    .kv dt { color: var(--dim); } .kv dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
    .counts { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; }
    .count { text-align: center; } .count b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
    .count span { color: var(--dim); font-size: 12px; }
    .bar { height: 10px; background: var(--line); border-radius: 3px; overflow: hidden; display: flex; }
    .bar i { display: block; height: 100%; }
    .prio { display: grid; grid-template-columns: 70px 1fr 60px; gap: 6px; align-items: center; margin: 4px 0; }
    .prio .n { text-align: right; font-variant-numeric: tabular-nums; }
    #grid, .grid { display: grid; grid-template-columns: repeat(auto-fill, 14px); gap: 3px; }
    .node-head { font-size: 13px; font-weight: 600; margin: 12px 0 6px; } .node-head.err { color: #e27a7a; }
    .tile { width: 14px; height: 14px; border-radius: 2px; background: var(--idle); }
    .s-busy { background: var(--busy); } .s-idle { background: var(--idle); } .s-starting { background: var(--starting); }
    .s-stopping { background: var(--stopping); } .s-restarting { background: var(--restarting); } .s-parked { background: var(--parked); }
    .s-stopped { background: var(--stopped); border: 1px solid var(--line); }
    .legend { display: flex; gap: 12px; font-size: 12px; color: var(--dim); margin-top: 8px; flex-wrap: wrap; }
    .legend .tile { display: inline-block; vertical-align: middle; margin-right: 4px; width: 10px; height: 10px; }
    svg.chart { width: 100%; height: 140px; display: block; }
    svg.chart .axis { stroke: var(--line); } svg.chart text { fill: var(--dim); font-size: 10px; }
    .l50 { stroke: #5aa9e6; } .l95 { stroke: #c9a227; } .l99 { stroke: #c94f4f; } .lrate { stroke: #2f9e5a; }
    svg.chart polyline { fill: none; stroke-width: 1.5; }
    svg.chart circle.l50 { fill: #5aa9e6; } svg.chart circle.l95 { fill: #c9a227; } svg.chart circle.l99 { fill: #c94f4f; } svg.chart circle.lrate { fill: #2f9e5a; }
    table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
    .elog, .elog-head { font: 12.5px/18px "DejaVu Sans Mono", monospace; white-space: pre; padding: 6px 8px; margin: 0; }
    .elog-head { color: var(--dim); font-weight: 600; border-bottom: 1px solid var(--line); overflow: hidden; }
    .elog { height: calc(100vh - 170px); min-height: 240px; max-height: none; overflow: auto; border: 0; background: transparent;
      contain: strict; cursor: pointer; }
    th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
    th { color: var(--dim); font-weight: 600; font-size: 12px; }
    td.title { white-space: normal; max-width: 480px; overflow: hidden; text-overflow: ellipsis; }
    .trow { display: grid; grid-template-columns: 120px 110px minmax(0, 1fr); height: 30px; align-items: center;
      border-bottom: 1px solid var(--line); contain: strict; font-variant-numeric: tabular-nums; }
    .trow > * { padding: 0 8px; overflow: hidden; text-overflow: ellipsis; white-space: pre; }
    .trow > a { padding: 0; margin: 0 8px; } .trow .rest { font: 12.5px/18px "DejaVu Sans Mono", monospace; }
    .trow.thead { color: var(--dim); font-weight: 600; font-size: 12px; } .rows .trow { cursor: pointer; }
    a { color: var(--accent); }
    .filters { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 12px; align-items: center; }
    input, select, button { background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 5px 8px; font: inherit; }
    button { cursor: pointer; background: #22303c; } button:hover { border-color: var(--accent); }
    button.danger { border-color: #6b2a2a; } button.danger:hover { background: #4a1f1f; }
    button:disabled, button:disabled:hover { opacity: .45; cursor: not-allowed; border-color: var(--line); background: #22303c; }
    select:disabled { opacity: .45; cursor: not-allowed; }
    .st { padding: 1px 6px; border-radius: 3px; font-size: 12px; background: var(--line); }
    .st-running, .st-succeeded { background: #1f4d33; } .st-failed, .st-timed_out, .st-rejected { background: #5a2424; }
    .st-cancelled { background: #4a3a1f; } .st-assigned { background: #3d3d1f; }
    pre { background: var(--bg); border: 1px solid var(--line); padding: 10px; overflow: auto; max-height: 420px; margin: 0; }
    .msg { color: var(--dim); margin-left: 8px; } .msg.err { color: #e27a7a; }
    .pager { display: flex; gap: 8px; align-items: center; margin-top: 10px; color: var(--dim); }
    #cluster-card, #groups-card { margin-bottom: 14px; } #group-rows button { padding: 2px 10px; }
    .row2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 14px; margin: 14px 0; }
    @media (max-width: 900px) { .row2 { grid-template-columns: minmax(0, 1fr); } .counts { grid-template-columns: repeat(2, 1fr); } }
    """
}
