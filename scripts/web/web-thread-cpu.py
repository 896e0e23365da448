#!/usr/bin/env python3
"""The web thread's CPU per 1,000 tasks while five pages' streams are open (issue 14): for each of
two `cortex` binaries, interleaved, REPS times: a daemon with 20 workers, four status streams and
one event stream (`newest=100`, as the overview and events pages open them), 30,000 synthetic 0 ms
tasks in three batches, waited for; then the CPU (utime + stime from /proc) of the thread named
`cortex-web` and of the rest of the daemon, per 1,000 tasks. Medians are printed and written.
Usage: web-thread-cpu.py NAME_A=BIN_A NAME_B=BIN_B OUT_JSON [REPS]   (default 3)
"""
import json, os, shutil, socket, statistics, sys, tempfile, threading, time
import daemon

BINS = [a.split("=", 1) for a in sys.argv[1:3]]
OUT = sys.argv[3]
REPS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
HZ = os.sysconf("SC_CLK_TCK")


def one(binary):
    work = tempfile.mkdtemp(prefix="cortex-web-thread-")
    d, cli = daemon.start(binary, work, workers=20, max_queue=1000000)
    try:
        url = open(os.path.join(d, "web.url")).read().strip()
        token = open(os.path.join(d, "web.token")).read().strip()
        port = int(url.rsplit(":", 1)[1].strip("/"))
        stop = threading.Event()

        def stream(q):
            s = socket.create_connection(("127.0.0.1", port)); s.settimeout(0.2)
            s.sendall(f"GET /api/events?{q} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            while not stop.is_set():
                try:
                    if not s.recv(1 << 16): break
                except socket.timeout: pass
            s.close()

        streams = [threading.Thread(target=stream, args=(q,)) for q in ["status=1&events=0&batch=1"] * 4 + ["batch=1&newest=100&since=0"]]
        for t in streams: t.start()
        time.sleep(1)
        pid = json.loads(cli("status", "--json"))["pid"]

        def ticks():
            web = rest = 0
            for t in os.listdir(f"/proc/{pid}/task"):
                name = open(f"/proc/{pid}/task/{t}/comm").read().strip()
                f = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
                v = int(f[11]) + int(f[12])
                if name == "cortex-web": web += v
                else: rest += v
            return web, rest

        batch = os.path.join(work, "batch.jsonl")
        open(batch, "w").write('{"synthetic":{"duration_ms":0}}\n' * 10000)
        w0, r0 = ticks(); t0 = time.time()
        for _ in range(3):
            ids = cli("submit", "--from", batch).split()
        s = socket.socket(socket.AF_UNIX); s.connect(os.path.join(d, "cortex.sock")); f = s.makefile("rwb")
        f.write((json.dumps({"op": "wait", "ids": ids}) + "\n").encode()); f.flush(); f.readline(); s.close()
        rate = 30000 / (time.time() - t0)
        time.sleep(0.3)  # the web thread's last tick
        w1, r1 = ticks()
        stop.set()
        for t in streams: t.join()
        return {"web_ms_per_1000": round((w1 - w0) * 1000 / HZ / 30, 2), "rest_ms_per_1000": round((r1 - r0) * 1000 / HZ / 30, 2),
                "tasks_per_s": round(rate)}
    finally:
        cli("stop", "--timeout", "10")
        shutil.rmtree(work, ignore_errors=True)


res = {name: [] for name, _ in BINS}
for rep in range(REPS):
    for name, binary in BINS:
        r = one(binary)
        res[name].append(r)
        print(f"rep {rep + 1} {name}: {r}", file=sys.stderr, flush=True)
out = {"what": "CPU of the cortex-web thread per 1,000 synthetic 0 ms tasks, 5 streams open (4 status, 1 events newest=100), 20 workers",
       "reps": REPS, "runs": res,
       "median_web_ms_per_1000": {n: statistics.median(x["web_ms_per_1000"] for x in v) for n, v in res.items()},
       "loadavg_end": os.getloadavg()}
print(json.dumps(out["median_web_ms_per_1000"]))
json.dump(out, open(OUT, "w"), indent=1)
