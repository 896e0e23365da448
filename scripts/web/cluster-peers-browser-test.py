#!/usr/bin/env python3
"""Drives node A's dashboard in headless Chromium (Selenium) in cluster mode, for what A reads
from node B's web view and from the database: the cluster-wide queue by priority, node B's
worker grid and charts, node B's events on A's events page (with the node column), and the history and output of a
task that ran on B on its page. With `down`, node B has been killed: the events page and the
task page must say that node B cannot be read.

Run by Tests/EndToEndTests/ClusterWebTests.swift. Usage:
  cluster-peers-browser-test.py URL_WITH_TOKEN OTHER_NODE FINISHED_ID MARKER RUNNING_ID QUEUED_HIGH SCREENSHOT_DIR [down]
Prints one line per check; exits 1 with the reason on the first failure.
"""
import os
import sys

from selenium.webdriver.common.by import By

from driving import Browser

url, other, finished, marker, running, high, shots = sys.argv[1:8]
down = len(sys.argv) > 8 and sys.argv[8] == "down"
browser = Browser(shots, "cluster-peers-failure.png")
driver, wait = browser.driver, browser.wait
base = url.split("?")[0]
text = lambda how, what: driver.find_element(how, what).get_attribute("textContent")
try:
    driver.get(url)
    if not down:
        wait(f"the cluster-wide queue by priority: {high} high", lambda: text(By.ID, "queue-high") == high)
        print(f"ok: the queue card counts the cluster's {high} queued high-priority tasks", flush=True)
        head = lambda: text(By.CSS_SELECTOR, f'.node-grid[data-node="{other}"] h3')
        wait(f"node {other}'s worker grid with its workers", lambda: head().startswith(f"Workers of node {other}: 1 (1 busy)"))
        tiles = driver.find_elements(By.CSS_SELECTOR, f'.node-grid[data-node="{other}"] .tile')
        titles = [t.get_attribute("title") for t in tiles]
        assert any(running in t for t in titles), f"no tile of node {other} names {running}: {titles}"
        print(f"ok: the overview shows node {other}'s worker running {running}", flush=True)
        marks = lambda: driver.find_elements(By.CSS_SELECTOR, f'svg[id="chart-rate-{other}"] polyline, svg[id="chart-rate-{other}"] circle')
        wait(f"node {other}'s throughput chart with its finished task", marks)
        print(f"ok: the overview draws node {other}'s own charts", flush=True)
        driver.save_screenshot(os.path.join(shots, "cluster-workers.png"))
    driver.get(base + "events")
    rows = lambda: text(By.ID, "event-rows")
    if down:
        wait(f"the events page to say node {other} cannot be read", lambda: f"node {other}" in text(By.ID, "peer-note"))
        print(f"ok: the events page says: {text(By.ID, 'peer-note')}", flush=True)
    else:
        wait(f"node {other}'s task.succeeded of {finished} on A's events page",
             lambda: any(finished in l and "task.succeeded" in l and l.split()[1] == other for l in rows().split("\n")))
        print(f"ok: the events page shows node {other}'s events, with the node column", flush=True)
        driver.save_screenshot(os.path.join(shots, "cluster-events.png"))
    driver.get(base + "tasks/" + finished)
    if down:
        wait(f"the task page to say the output is on node {other}, which cannot be read",
             lambda: f"node {other}" in text(By.ID, "output-note"))
        print(f"ok: the task page says: {text(By.ID, 'output-note')}", flush=True)
        wait(f"the task page's facts to say node {other}'s detail cannot be read", lambda: f"node {other}" in text(By.ID, "task-facts"))
        print(f"ok: the task page still shows the cluster's record of {finished}, with a note", flush=True)
    else:
        wait(f"the output of {finished}, read from node {other}", lambda: marker in text(By.ID, "task-output"))
        assert text(By.ID, "output-note") == f"read from node {other}", text(By.ID, "output-note")
        print(f"ok: the task page shows the output of {finished} from node {other}", flush=True)
        wait(f"the history of {finished}, read from node {other}", lambda: "task.succeeded" in text(By.ID, "task-history"))
        print(f"ok: the task page shows the history node {other} logged", flush=True)
finally:
    driver.quit()
