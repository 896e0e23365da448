#!/usr/bin/env python3
"""Drives node A's dashboard in headless Chromium (Selenium) in cluster mode: the overview shows
node B and the task running on it and the cluster's token budget, and the task list names the
node of a task that ran on B.

Run by Tests/EndToEndTests/ClusterWebTests.swift. Usage:
  cluster-browser-test.py URL_WITH_TOKEN OTHER_NODE RUNNING_ID FINISHED_ID CLUSTER_BUDGET SCREENSHOT_DIR
Prints one line per check; exits 1 with the reason on the first failure.
"""
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

url, other, running, finished, budget, shots = sys.argv[1:7]


def fail(msg):
    print("FAIL:", msg, flush=True)
    try:
        driver.save_screenshot(os.path.join(shots, "cluster-failure.png"))
    except Exception:
        pass
    sys.exit(1)


def wait(what, cond, timeout=20):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # the page may be mid-update
            last = e
        time.sleep(0.1)
    fail(f"timed out after {timeout} s waiting for: {what} (last error: {last})")


opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    driver.get(url)
    row = wait(f"node {other} on the overview's cluster card",
               lambda: driver.find_element(By.CSS_SELECTOR, f'#cluster-nodes tr[data-node="{other}"]'))
    wait(f"{running} listed as running on {other}", lambda: running in row.get_attribute("textContent"))
    print(f"ok: the overview shows node {other} running {running}", flush=True)
    want = f"{int(budget):,}"
    wait(f"the cluster's token budget {want} on the budget card",
         lambda: driver.find_element(By.ID, "budget-total").get_attribute("textContent") == want)
    print(f"ok: the budget card shows the cluster's budget, {want}", flush=True)
    time.sleep(0.5)
    driver.save_screenshot(os.path.join(shots, "cluster-overview.png"))
    driver.get(url.split("?")[0] + "tasks")
    cell = wait(f"{finished} in the task list", lambda: driver.find_element(By.CSS_SELECTOR, f'#task-rows tr[data-id="{finished}"] td:nth-child(6)'))
    wait(f"{finished}'s row to name node {other}", lambda: cell.get_attribute("textContent").startswith(other + " "))
    print(f"ok: the task list says {finished} ran on {other}", flush=True)
finally:
    driver.quit()
