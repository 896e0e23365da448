#!/usr/bin/env python3
"""Medians of repeated benchmark runs, with targets, as JSON and a Markdown table.

usage: summarize.py RAW.jsonl METRICS.json OUT.json OUT.md TITLE
RAW lines: {"rep": 1, "run": "cortex_exec", "r": {...observed values...}}
METRICS: [{"name": ..., "run": ..., "key": ..., "target": ">= 1500" (optional), "note": ...}, ...]
  or {"name": ..., "ratio": ["metric a", "metric b"], "target": ...} for a ratio of two medians.
A metric with no observed value is reported as missing and counts as not met.
"""
import json, os, platform, statistics, subprocess, sys

raw, metrics_path, out_json, out_md, title = sys.argv[1:6]
runs = [json.loads(l) for l in open(raw) if l.strip()]
metrics = json.load(open(metrics_path))

def values(run, key):
    return [r["r"][key] for r in runs if r["run"] == run and isinstance(r["r"].get(key), (int, float))]

medians, reps, met = {}, {}, {}
for m in metrics:
    if "ratio" in m:
        a, b = (medians.get(x) for x in m["ratio"])
        medians[m["name"]] = a / b if a is not None and b else None
        reps[m["name"]] = []
    else:
        v = values(m["run"], m["key"])
        medians[m["name"]] = statistics.median(v) if v else None
        reps[m["name"]] = v
    t = m.get("target")
    if t:
        op, limit = t.split()
        val = medians[m["name"]]
        met[m["name"]] = val is not None and (val >= float(limit) if op == ">=" else val <= float(limit))

def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"

machine = {"cores": os.cpu_count(), "kernel": platform.release(),
           "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
nreps = max((r["rep"] for r in runs), default=0)
doc = {"title": title, "git": git("rev-parse", "--short", "HEAD"), "machine": machine, "repetitions": nreps,
       "medians": medians, "targets": {m["name"]: m["target"] for m in metrics if m.get("target")},
       "met": met, "runs": runs}
json.dump(doc, open(out_json, "w"), indent=1)

def fmt(x):
    return "missing" if x is None else (f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}")

lines = [f"# {title} ({os.path.basename(out_json)})", "",
         f"git {doc['git']}, {machine['cores']} cores, {machine['mem_gib']} GiB, kernel {machine['kernel']}; "
         f"medians of {nreps} repetitions in one run.", "",
         "| metric | median | repetitions | target | met |", "|---|---:|---|---|---|"]
for m in metrics:
    n = m["name"]
    ok = "" if n not in met else ("yes" if met[n] else "**no**")
    lines.append(f"| {n} | {fmt(medians[n])} | {', '.join(fmt(x) for x in reps[n])} | {m.get('target', '')} | {ok} |")
notes = [m for m in metrics if m.get("note")]
if notes:
    lines.append("")
    lines += [f"- `{m['name']}`: {m['note']}" for m in notes]
open(out_md, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(0 if all(met.values()) else 1)
