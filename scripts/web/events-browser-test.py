#!/usr/bin/env python3
"""The events page accounts for every event (WebBrowserTests.testTheEventsPageDrawsOrCountsEveryEvent).

Usage: events-browser-test.py CORTEX_BINARY COORDINATION_DIR URL_WITH_TOKEN SCREENSHOT_DIR
With /events open (all events), submits synthetic 0 ms tasks over the daemon's socket at RATE a
second (400: about 1,600 events a second, more than the page's 100 lines at 10 frames a second)
until the page has drawn more than DRAWN events (21,000) or LIMIT_S (120 s) passed. Then, once
the page is still: it shows the log's newest event, and every event since the start was either
drawn (what `window.cortexLatency` and `window.cortexDropped`, which the benchmark reads, count)
or counted in "N events streamed past between frames". The page's record of its drawn events
held at most 20,000 and was halved past that without a word: a benchmark run read 10,001 events
drawn by a page that drew all it should. Prints one line per check; exits 1 with the reason on
the first failure.
"""
import glob
import json
import os
import socket
import sys
import threading
import time

from driving import Browser

cortex, root, url, shots = sys.argv[1:5]
RATE, DRAWN, LIMIT_S = 400, 21_000, 120

# The page's state in one read (the script runs between two of the page's frames): the seq of
# its newest line, what it says streamed past, and how many drawn events its record counts.
STATE = """
  const top = document.getElementById('event-rows').textContent.split('\\n')[0];
  const info = document.getElementById('events-info').textContent;
  const m = info.match(/^([\\d,]+) events streamed past/);
  const dropped = window.cortexDropped ? window.cortexDropped.latency : 0;
  return [parseInt(top, 10) || 0, m ? parseInt(m[1].replace(/,/g, ''), 10) : 0, window.cortexLatency.length + dropped];
"""


def last_logged_seq():
    seq = 0
    for path in glob.glob(os.path.join(root, "events", "*.jsonl")):
        with open(path, "rb") as f:
            for line in f:
                try:
                    seq = max(seq, json.loads(line)["seq"])
                except (ValueError, KeyError):
                    pass
    return seq


def submit_until(stop):
    """Submits RATE/20 synthetic tasks every 50 ms until `stop` is set."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(root, "cortex.sock"))
    f = s.makefile("rwb")
    spec = {"synthetic": {"duration_ms": 0}}
    t0, sent = time.monotonic(), 0
    while not stop.is_set():
        f.write((json.dumps({"op": "submit", "tasks": [spec] * (RATE // 20)}) + "\n").encode())
        f.flush()
        answer = json.loads(f.readline())
        if not answer.get("ok"):
            raise SystemExit(f"submit refused: {answer}")
        sent += RATE // 20
        time.sleep(max(0, t0 + sent / RATE - time.monotonic()))
    s.close()


browser = Browser(shots, "events-failure.png")
driver, fail, wait = browser.driver, browser.fail, browser.wait


def still(seconds=1.5):
    """The page's state once it stopped changing (nothing new for `seconds`)."""
    def same():
        a = driver.execute_script(STATE)
        time.sleep(seconds)
        b = driver.execute_script(STATE)
        return b if a == b else None
    return wait("the events page to be still", same, timeout=60)


try:
    driver.get(url)
    driver.get(url.split("?")[0] + "events")
    wait("the events stream to be live", lambda: driver.find_element("id", "live").text == "live")
    still()
    # The start, and the page's record emptied, in one script: no frame comes between them.
    seq0, skipped0, _ = driver.execute_script(
        "const s = (() => {" + STATE + "})(); window.cortexLatency = []; window.cortexDropped = { latency: 0, draws: 0 }; return s;")

    stop = threading.Event()
    load = threading.Thread(target=submit_until, args=(stop,))
    load.start()
    began = time.monotonic()
    drawn = 0
    try:
        while time.monotonic() - began < LIMIT_S:
            top, skipped, _ = driver.execute_script(STATE)
            drawn = (top - seq0) - (skipped - skipped0)
            if drawn > DRAWN:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        load.join()
    print(f"ok: the page drew about {drawn:,} events in {time.monotonic() - began:.0f} s of load", flush=True)

    top, skipped, recorded = still()
    logged = last_logged_seq()
    if top != logged:
        fail(f"the page's newest line is seq {top}, the log's newest event seq {logged}")
    streamed = top - seq0
    drawn = streamed - (skipped - skipped0)
    if skipped - skipped0 <= 0:
        fail(f"{streamed:,} events at {RATE} tasks a second and none streamed past: the load was too slow to test this")
    if recorded != drawn:
        fail(f"{streamed:,} events since the start: {skipped - skipped0:,} streamed past, so {drawn:,} drawn, "
             f"but the page's record (window.cortexLatency, read by the benchmark) counts {recorded:,}")
    print(f"ok: {streamed:,} events: {drawn:,} drawn (the page's record counts {recorded:,}), "
          f"{skipped - skipped0:,} streamed past between frames; the newest, seq {top}, is the log's", flush=True)
    browser.no_exceptions("the events page")
finally:
    driver.quit()
