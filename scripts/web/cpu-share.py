#!/usr/bin/env python3
"""What a third of a core spent by someone else costs the daemon on this machine (issue 14's
throughput target): the daemon's rate on the benchmark's synthetic workload (10,000 synthetic 0 ms
tasks, 20 workers, one batch, waited for over the socket) with nothing else running, with a busy
loop at nice 19 (wants a whole core, yields to everyone), and with a nice-0 process that is busy
DUTY ms of every 100 ms (a stand-in for five dashboards' browser, which took 0.3-0.5 of a core in
scripts/bench-web). Cases alternate within each repetition; medians are printed and written.
Usage: cpu-share.py CORTEX OUT_JSON [REPS] [DUTY]   (defaults 5, 40)
"""
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import daemon
CORTEX, OUT = sys.argv[1], sys.argv[2]
REPS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
DUTY = int(sys.argv[4]) if len(sys.argv) > 4 else 40
work = tempfile.mkdtemp(prefix="cortex-cpu-share-")
d, cli = daemon.start(CORTEX, work, workers=20, max_queue=1000000)
batch = os.path.join(work, "batch.jsonl")
open(batch, "w").write('{"synthetic":{"duration_ms":0}}\n' * 10000)

def run():
    t0 = time.perf_counter()
    ids = cli("submit", "--from", batch).split()
    s = socket.socket(socket.AF_UNIX); s.connect(os.path.join(d, "cortex.sock")); f = s.makefile("rwb")
    f.write((json.dumps({"op": "wait", "ids": ids}) + "\n").encode()); f.flush()
    if not json.loads(f.readline()).get("ok"): raise SystemExit("wait failed")
    s.close()
    return len(ids) / (time.perf_counter() - t0)

BURNERS = {
    "none": None,
    "busy_loop_nice19": ["nice", "-n", "19", sys.executable, "-c", "while True: pass"],
    f"nice0_busy_{DUTY}ms_of_100": [sys.executable, "-c",
        f"import time\nwhile True:\n t=time.monotonic()\n while time.monotonic()-t<{DUTY/1000}: pass\n time.sleep({(100-DUTY)/1000})"],
}
rates = {k: [] for k in BURNERS}
burner_cpu = {k: [] for k in BURNERS}
run()  # warm up
for rep in range(REPS):
    for name, argv in BURNERS.items():
        p = subprocess.Popen(argv) if argv else None
        time.sleep(1)
        t0 = time.time()
        r = run()
        if p:
            st = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            burner_cpu[name].append(round((int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK") / (time.time() - t0 + 1), 2))
            p.send_signal(signal.SIGKILL); p.wait()
        rates[name].append(round(r))
        print(f"rep {rep + 1} {name}: {r:.0f} tasks/s", file=sys.stderr, flush=True)
        time.sleep(1)
cli("stop", "--timeout", "5")
none = statistics.median(rates["none"])
res = {"workload": "10,000 synthetic 0 ms tasks, 20 workers, one batch", "reps": REPS, "rates": rates,
       "burner_cores": burner_cpu,
       "median": {k: statistics.median(v) for k, v in rates.items()},
       "ratio_to_none": {k: round(statistics.median(v) / none, 3) for k, v in rates.items()},
       "loadavg_end": os.getloadavg()}
print(json.dumps(res, indent=1))
json.dump(res, open(OUT, "w"), indent=1)
shutil.rmtree(work, ignore_errors=True)
