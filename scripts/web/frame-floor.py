#!/usr/bin/env python3
"""The floor of a page's cost in this headless Chromium (issue 14): a page that changes one text
node 1, 5 or 10 times a second, and about:blank, each alone in a window for 8 s after 5 s to
settle, twice; prints the browser's CPU (all its processes) in cores. Nothing of Cortex runs.
Usage: .build/web-venv/bin/python scripts/web/frame-floor.py
"""
import os, sys, time, tempfile
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
HZ = os.sysconf("SC_CLK_TCK")
WORK = tempfile.mkdtemp(prefix="cortex-floor-")
o = webdriver.ChromeOptions(); o.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
          "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
    o.add_argument(a)
o.add_argument("--user-data-dir=" + os.path.join(WORK, "profile"))
drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
def chromium():
    procs = {}
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try: st = open(f"/proc/{p}/stat").read()
        except OSError: continue
        f = st[st.rindex(")") + 2:].split()
        procs[int(p)] = (int(f[1]), int(f[11]) + int(f[12]))
    mine = {drv.service.process.pid}; grew = True
    while grew:
        grew = False
        for pid, (pp, _) in procs.items():
            if pp in mine and pid not in mine: mine.add(pid); grew = True
    return sum(procs[p][1] for p in mine if p in procs and p != drv.service.process.pid)
pages = {
 "blank": "about:blank",
 "text5": "data:text/html,<body><div id=x>0</div><script>let n=0;setInterval(()=>{document.getElementById('x').textContent=++n},200)</script>",
 "text10": "data:text/html,<body><div id=x>0</div><script>let n=0;setInterval(()=>{document.getElementById('x').textContent=++n},100)</script>",
 "text1": "data:text/html,<body><div id=x>0</div><script>let n=0;setInterval(()=>{document.getElementById('x').textContent=++n},1000)</script>",
}
for rep in range(2):
    for name, u in pages.items():
        drv.switch_to.new_window("window"); drv.get(u); time.sleep(5)
        a = chromium(); t0 = time.time(); time.sleep(8); b = chromium()
        print(rep, name, round((b - a) / HZ / (time.time() - t0), 4), "cores", flush=True)
        drv.close(); drv.switch_to.window(drv.window_handles[0])
drv.quit()
import shutil; shutil.rmtree(WORK, ignore_errors=True)
