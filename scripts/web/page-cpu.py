#!/usr/bin/env python3
"""What each dashboard page costs headless Chromium (issue 14): CPU by Chromium process type
(browser, renderer, gpu-process, utility) and the renderer's main-thread time, with one page open
at a time, while tasks are submitted at RATE/s (synthetic 5 ms ones, or the task spec in $SPEC as JSON). Pages and variants alternate within
each repetition, so each saw the same machine; medians are printed and written to $OUTJSON.

A variant serves other page files without a rebuild: a small proxy per variant answers
/static/app.js and /static/app.css from DIR (a file missing there, or DIR "-": the daemon's own)
and passes every other request to the daemon.

Usage: page-cpu.py CORTEX RATE SECONDS REPS NAME=DIR ... -- PAGE ...
  e.g. .build/web-venv/bin/python scripts/web/page-cpu.py .build/release/cortex 1000 8 3 now=- -- blank "" tasks events
  (PAGE is a path under the dashboard: "" the overview, "tasks", "events?type=task.succeeded";
  "blank" is about:blank, the browser's cost with no page.)
"""
import json, os, socket, statistics, sys, tempfile, threading, time
import daemon
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CORTEX, RATE, SECS, REPS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rest = sys.argv[5:]
sep = rest.index("--")
VARIANTS = [a.split("=", 1) for a in rest[:sep]]
PAGES = rest[sep + 1:]
WORK = tempfile.mkdtemp(prefix="cortex-page-cpu-")
HZ = os.sysconf("SC_CLK_TCK")

d, cli = daemon.start(CORTEX, WORK, workers=20, max_queue=1000000)
url = open(os.path.join(d, "web.url")).read().strip()
token = open(os.path.join(d, "web.token")).read().strip()
dport = int(url.rsplit(":", 1)[1].strip("/"))

def fetch(path):
    s = socket.create_connection(("127.0.0.1", dport))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{dport}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
    b = b""
    while True:
        x = s.recv(65536)
        if not x: break
        b += x
    return b.split(b"\r\n\r\n", 1)[1]

def proxy(files):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0)); ls.listen(64)
    def pump(a, b):
        try:
            while True:
                x = a.recv(65536)
                if not x: break
                b.sendall(x)
        except OSError: pass
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
    def conn(cs):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    x = cs.recv(65536)
                    if not x: cs.close(); return
                    buf += x
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin1").split("\r\n")
                path = lines[0].split()[1].split("?")[0]
                if path in files:
                    body, ctype = files[path]
                    cs.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\r\n".encode() + body)
                    continue
                hs = [l for l in lines[1:] if not l.lower().startswith(("host:", "connection:"))]
                up = socket.create_connection(("127.0.0.1", dport))
                up.sendall(("\r\n".join([lines[0], f"Host: 127.0.0.1:{dport}", "Connection: close", *hs]) + "\r\n\r\n").encode("latin1") + buf)
                threading.Thread(target=pump, args=(cs, up), daemon=True).start()
                pump(up, cs)
                return
        except OSError:
            cs.close()
    def accept():
        while True:
            cs, _ = ls.accept()
            threading.Thread(target=conn, args=(cs,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return ls.getsockname()[1]

orig = {"/static/app.js": (fetch("/static/app.js"), "text/javascript"), "/static/app.css": (fetch("/static/app.css"), "text/css")}
os.makedirs(os.path.join(WORK, "orig"), exist_ok=True)
open(os.path.join(WORK, "orig", "app.js"), "wb").write(orig["/static/app.js"][0])
ports = {}
for name, dirp in VARIANTS:
    files = dict(orig)
    for f, k, t in (("app.js", "/static/app.js", "text/javascript"), ("app.css", "/static/app.css", "text/css")):
        p = os.path.join(dirp, f)
        if dirp != "-" and os.path.exists(p): files[k] = (open(p, "rb").read(), t)
    ports[name] = proxy(files)

o = webdriver.ChromeOptions(); o.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
          "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
    o.add_argument(a)
for a in (os.environ.get("CHROME_ARGS") or "").split():  # extra flags, e.g. another --window-size
    o.add_argument(a)
o.add_argument("--user-data-dir=" + os.path.join(WORK, "profile"))
drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
drv.get(url + "?token=" + token)
drv.get("about:blank"); base = drv.current_window_handle

def chromium(by):
    """CPU ticks of the driver's descendants (this browser only; others may run Chromium too), by --type."""
    procs = {}
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            st = open(f"/proc/{p}/stat").read()
            args = open(f"/proc/{p}/cmdline").read().replace("\0", " ").split()
        except OSError: continue
        f = st[st.rindex(")") + 2:].split()
        procs[int(p)] = (int(f[1]), int(f[11]) + int(f[12]), args)
    mine = {drv.service.process.pid}
    grew = True
    while grew:
        grew = False
        for pid, (pp, _, _) in procs.items():
            if pp in mine and pid not in mine: mine.add(pid); grew = True
    for pid in mine:
        if pid not in procs or pid == drv.service.process.pid: continue
        _, t, args = procs[pid]
        k = next((a[7:] for a in args if a.startswith("--type=")), "browser")
        by[k] = by.get(k, 0) + t
    return by

stop = False
def load():
    s = socket.socket(socket.AF_UNIX); s.connect(os.path.join(d, "cortex.sock")); f = s.makefile("rwb")
    per = max(1, RATE // 20); spec = json.loads(os.environ.get("SPEC") or '{"synthetic": {"duration_ms": 5}}'); t0 = time.perf_counter(); sent = 0
    while not stop:
        f.write((json.dumps({"op": "submit", "tasks": [spec] * per}) + "\n").encode()); f.flush(); f.readline()
        sent += per; time.sleep(max(0, t0 + sent / RATE - time.perf_counter()))
threading.Thread(target=load, daemon=True).start()
time.sleep(3)
res = {}
for rep in range(REPS):
    for page in PAGES:
        for name, port in ports.items():
            if page == "blank":
                drv.switch_to.new_window("window"); drv.get("about:blank")
            else:
                drv.switch_to.new_window("window"); drv.get(f"http://127.0.0.1:{port}/{page}")
            time.sleep(float(os.environ.get("SETTLE_S", "3")))  # a new window costs Chromium a core for seconds
            drv.execute_cdp_cmd("Performance.enable", {})
            m0 = {m["name"]: m["value"] for m in drv.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
            a = chromium({}); l0 = os.getloadavg()[0]; t0 = time.time()
            time.sleep(SECS)
            b = chromium({}); dt = time.time() - t0
            m1 = {m["name"]: m["value"] for m in drv.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
            cores = {k: round((b.get(k, 0) - a.get(k, 0)) / HZ / dt, 3) for k in b}
            cores["all"] = round(sum(cores.values()), 3)
            mt = {k: round((m1.get(k, 0) - m0.get(k, 0)) / dt, 3) for k in ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "LayoutCount", "RecalcStyleCount")}
            r = res.setdefault(page, {}).setdefault(name, [])
            r.append({"cores": cores, "main_per_s": mt, "load": l0})
            print(f"rep {rep} {page:<28} {name:<8} cores {cores} main/s {mt} load {l0:.1f}", file=sys.stderr, flush=True)
            drv.close(); drv.switch_to.window(base)
stop = True
drv.quit()
print("== medians (cores)")
for page, v in res.items():
    for name, rs in v.items():
        keys = sorted({k for r in rs for k in r["cores"]})
        med = {k: round(statistics.median(r["cores"].get(k, 0) for r in rs), 3) for k in keys}
        mm = {k: round(statistics.median(r["main_per_s"][k] for r in rs), 3) for k in rs[0]["main_per_s"]}
        print(f"{page:<28} {name:<8} {med} main/s {mm}")
cli("stop", "--timeout", "5")
if os.environ.get("OUTJSON"):
    json.dump(res, open(os.environ["OUTJSON"], "w"), indent=1)
import shutil; shutil.rmtree(WORK, ignore_errors=True)
