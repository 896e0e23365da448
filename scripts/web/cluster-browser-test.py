#!/usr/bin/env python3
"""Drives node A's dashboard in headless Chromium (Selenium) in cluster mode: the overview shows
node B and the task running on it and the cluster's token budget, the task list names the node
of a task that ran on B and follows the cluster's list as A's server pushes it (a task submitted
on B is on it, succeeded, with no further request of the page's); on A, the Retry button of a task that failed on B and the priority
of a task queued in the cluster (submitted on B) act on the cluster.

Run by Tests/EndToEndTests/ClusterWebTests.swift. Usage:
  cluster-browser-test.py URL_WITH_TOKEN OTHER_NODE RUNNING_ID FINISHED_ID CLUSTER_BUDGET SCREENSHOT_DIR FAILED_ID QUEUED_ID
                          CORTEX_BINARY OTHER_NODE_DIR
Prints one line per check; exits 1 with the reason on the first failure.
"""
import os
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from driving import Browser, run_cli

url, other, running, finished, budget, shots, failed, queued, cortex, other_dir = sys.argv[1:11]
browser = Browser(shots, "cluster-failure.png")
driver, wait, fail = browser.driver, browser.wait, browser.fail
try:
    driver.get(url)
    # The card is redrawn when a node's row changes (its lease, every second): find it each time.
    row = lambda: driver.find_element(By.CSS_SELECTOR, f'#cluster-nodes tr[data-node="{other}"]').get_attribute("textContent")
    wait(f"{running} listed as running on node {other} on the overview's cluster card", lambda: running in row())
    print(f"ok: the overview shows node {other} running {running}", flush=True)
    want = f"{int(budget):,}"
    wait(f"the cluster's token budget {want} on the budget card",
         lambda: driver.find_element(By.ID, "budget-total").get_attribute("textContent") == want)
    print(f"ok: the budget card shows the cluster's budget, {want}", flush=True)
    time.sleep(0.5)
    driver.save_screenshot(os.path.join(shots, "cluster-overview.png"))
    driver.get(url.split("?")[0] + "tasks")
    cell = lambda: driver.find_element(By.CSS_SELECTOR, f'#task-rows .trow[data-id="{finished}"] .rest').get_attribute("textContent")
    wait(f"{finished} in the task list, its row naming node {other}", lambda: f" {other} · " in cell())
    print(f"ok: the task list says {finished} ran on {other}", flush=True)
    # A task submitted on the other node comes to the list by itself: the page follows what A's
    # server pushes (it used to ask again after each task event it saw).
    fetches = lambda: driver.execute_script(
        "return performance.getEntriesByType('resource').filter((e) => e.initiatorType === 'fetch' && e.name.includes('/api/tasks?')).length")
    asked = fetches()
    new = run_cli(cortex, other_dir, fail, "submit", "-p", "--description", "followed from " + other, "--synthetic", "300:5").stdout.strip()
    state = lambda: driver.find_element(By.CSS_SELECTOR, f'#task-rows .trow[data-id="{new}"] .st').get_attribute("textContent")
    wait(f"{new}, submitted on {other}, on the list as succeeded", lambda: state() == "succeeded", timeout=20)
    rest = driver.find_element(By.CSS_SELECTOR, f'#task-rows .trow[data-id="{new}"] .rest').get_attribute("textContent")
    if "followed from " + other not in rest or " · " not in rest:  # either node may have run it
        fail(f"the row of {new} does not show its title and the node that ran it: {rest!r}")
    if fetches() != asked:
        fail(f"the page asked for the list {fetches() - asked} more times while {new} ran: it does not follow the pushed list")
    print(f"ok: {new}, submitted on {other}, came to A's list by itself (no request of the page's)", flush=True)
    msg = lambda: driver.find_element(By.ID, "action-msg").get_attribute("textContent")
    driver.get(url.split("?")[0] + "tasks/" + failed)
    wait(f"the Retry button of {failed} enabled", lambda: driver.find_element(By.ID, "retry-btn").is_enabled())
    driver.find_element(By.ID, "retry-btn").click()
    wait(f"the retry of {failed} answered with a new task", lambda: msg().startswith("submitted as task-"))
    print(f"ok: Retry on A of {failed}, which failed on {other}: {msg()}", flush=True)
    driver.get(url.split("?")[0] + "tasks/" + queued)
    wait(f"{queued} shown as queued", lambda: "queued" in driver.find_element(By.ID, "task-title").get_attribute("textContent"))
    Select(driver.find_element(By.ID, "priority-select")).select_by_value("high")
    driver.find_element(By.ID, "priority-btn").click()
    wait(f"the priority of {queued} set", lambda: msg() == "priority is now high")
    print(f"ok: {queued}, queued in the cluster, set to high priority from A", flush=True)
finally:
    driver.quit()
