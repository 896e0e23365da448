#!/usr/bin/env python3
"""Drives the dashboard in headless Chromium (Selenium) against a running daemon.

Run by Tests/EndToEndTests/WebBrowserTests.swift, which starts the daemon with 20 workers and
1,000 long synthetic tasks first. Usage:
  browser-test.py CORTEX_BINARY COORDINATION_DIR URL_WITH_TOKEN SCREENSHOT_DIR
Prints one line per check; exits 1 with the reason on the first failure.
"""
import json
import os
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from driving import Browser, run_cli

cortex, root, url, shots = sys.argv[1:5]


def cli(*args):
    return run_cli(cortex, root, fail, *args).stdout


def text(id_):
    return driver.find_element(By.ID, id_).get_attribute("textContent")


browser = Browser(shots, "failure.png")
driver, fail, wait = browser.driver, browser.fail, browser.wait
try:
    # 1. The printed URL signs in: the token becomes a cookie and leaves the address bar.
    driver.get(url)
    wait("the overview after sign-in", lambda: driver.current_url.rstrip("/").endswith(url.split("/?")[0].split("//")[1]) or "token" not in driver.current_url)
    if "token=" in driver.current_url:
        fail(f"the token is still in the address bar: {driver.current_url}")
    cookies = driver.get_cookies()
    if not any(c["httpOnly"] and c.get("sameSite") == "Strict" for c in cookies):
        fail(f"no HttpOnly SameSite=Strict cookie: {cookies}")
    print("ok: signed in with the printed URL; cookie HttpOnly, SameSite=Strict", flush=True)

    # 2. Overview: 20 tiles, and the counts match `cortex status`.
    wait("20 worker tiles", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#grid .tile")) == 20)
    def counts_match():
        st = json.loads(cli("status", "--json"))
        page = {k: text("count-" + k).replace(",", "") for k in st["tasks"]}
        want = {k: str(v) for k, v in st["tasks"].items()}
        q = {p: text("queue-" + p).replace(",", "") for p in st["queued_by_priority"]}
        wq = {p: str(v) for p, v in st["queued_by_priority"].items()}
        busy = len(driver.find_elements(By.CSS_SELECTOR, "#grid .tile.s-busy"))
        return page == want and q == wq and busy == st["workers"].get("busy", 0) and (page, busy)
    got = wait("the overview's counts to match cortex status", counts_match)
    print(f"ok: overview counts match cortex status: {got}", flush=True)
    busy_tile = driver.find_element(By.CSS_SELECTOR, "#grid .tile.s-busy")
    if "task-" not in busy_tile.get_attribute("title"):
        fail(f"a busy tile does not name its task on hover: {busy_tile.get_attribute('title')!r}")
    print(f"ok: hover on a busy tile names its task: {busy_tile.get_attribute('title')}", flush=True)
    wait("the throughput chart", lambda: driver.find_elements(By.CSS_SELECTOR, "#chart-rate polyline"))
    time.sleep(0.5)
    driver.save_screenshot(os.path.join(shots, "overview.png"))
    # Scale with the box emptied: it says what to type (it sent 0 and showed "not 0").
    # (Emptied and clicked in one step: an empty box out of focus is refilled with the pool size.)
    driver.execute_script("document.getElementById('scale-input').value = ''; document.getElementById('scale-btn').click()")
    wait("Scale to say what to type", lambda: "whole number from 1 to 1024" in text("scale-msg"))
    if "not 0" in text("scale-msg"):
        fail(f"Scale with an empty box says {text('scale-msg')!r}")
    print(f"ok: Scale with an empty box says {text('scale-msg')!r}", flush=True)

    # 3. Tasks: a task submitted from the CLI appears without a reload.
    driver.get(url.split("?")[0] + "tasks")
    wait("the task list", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#task-rows .trow")) == 50)
    total = text("task-total")
    want_total = sum(json.loads(cli("status", "--json"))["tasks"].values())
    if f"of {want_total:,} matching" not in total:
        fail(f"the task list says {total!r}, not {want_total:,} tasks as cortex status does")
    driver.execute_script("window.__notReloaded = true")
    new_id = cli("submit", "--description", "submitted while the page was open", "--synthetic", "60000:10").strip()
    wait(f"{new_id} to appear live in the task list", lambda: driver.find_elements(By.CSS_SELECTOR, f'#task-rows .trow[data-id="{new_id}"]'))
    if not driver.execute_script("return window.__notReloaded === true"):
        fail("the page reloaded instead of updating live")
    print(f"ok: {new_id} appeared live in the task list", flush=True)
    driver.save_screenshot(os.path.join(shots, "tasks.png"))
    # A filter the server refuses (a label with no key): its error, and no rows of the previous
    # filter left under it as if they were its answer.
    driver.find_element(By.ID, "f-label").send_keys("=red\n")
    wait("the refused label filter's error", lambda: "has no key" in text("task-total"))
    time.sleep(0.7)  # and none come back later (the list fills the rows out of sight 500 ms after a draw)
    if driver.find_elements(By.CSS_SELECTOR, "#task-rows .trow"):
        fail(f"rows of the previous filter stay under the refused one's error {text('task-total')!r}")
    # The refused request is the one console entry this leaves (the browser logs a 400 itself).
    other = [e for e in driver.get_log("browser") if "label=%3Dred" not in e["message"]]
    if other:
        fail(f"errors in the browser console after the refused filter: {other}")
    print(f"ok: a refused filter says {text('task-total')!r} and lists nothing", flush=True)

    # 4. Cancel a running task by clicking.
    running = json.loads(cli("list", "--state", "running", "--json"))
    if not running:
        fail("no running task to cancel")
    victim = running[0]["id"]
    driver.get(url.split("?")[0] + "tasks/" + victim)
    wait("the task page", lambda: victim in text("task-title") and "running" in text("task-title"))
    driver.find_element(By.ID, "cancel-btn").click()
    wait(f"{victim} to show as cancelled", lambda: "cancelled" in text("task-title"), timeout=20)
    wait("task.cancelled in the task's history", lambda: "task.cancelled" in text("task-history"))
    print(f"ok: clicked Cancel; {victim} is cancelled", flush=True)
    driver.save_screenshot(os.path.join(shots, "task.png"))

    # 5. Change a queued task's priority from its page: the same request as `cortex edit`.
    queued = json.loads(cli("list", "--state", "queued", "--json"))
    if not queued:
        fail("no queued task to reprioritize")
    moved = queued[-1]["id"]
    driver.get(url.split("?")[0] + "tasks/" + moved)
    wait("the queued task's page", lambda: moved in text("task-title") and "queued" in text("task-title"))
    if driver.find_element(By.ID, "priority-select").get_attribute("value") != queued[-1]["priority"]:
        fail(f"the priority control does not show {moved}'s priority {queued[-1]['priority']}")
    Select(driver.find_element(By.ID, "priority-select")).select_by_value("critical")
    driver.find_element(By.ID, "priority-btn").click()
    wait(f"{moved}'s page to say its priority is critical", lambda: "priority is now critical" in text("action-msg"))
    shown = json.loads(cli("show", moved, "--json"))
    if shown.get("priority") != "critical":
        fail(f"cortex show {moved} says priority {shown.get('priority')!r} after the change")
    wait("the new priority in the task's facts", lambda: "critical" in text("task-facts"))
    print(f"ok: set {moved}'s priority to critical from its page; cortex show agrees", flush=True)
    # A running task's priority cannot change: the control is disabled on its page.
    driver.get(url.split("?")[0] + "tasks/" + running[-1]["id"])
    wait("the running task's page", lambda: "running" in text("task-title"))
    if driver.find_element(By.ID, "priority-btn").is_enabled():
        fail("the priority control is enabled on a running task's page")
    # ...and says why, as does Retry (a running task has not finished).
    for b, says in (("priority-btn", "only a queued task"), ("retry-btn", "can be retried")):
        why = driver.find_element(By.ID, b).get_attribute("title")
        if "is running" not in why or says not in why:
            fail(f"the disabled {b} does not say why: title {why!r}")
    print("ok: the priority control is disabled for a running task", flush=True)

    # 6. Events: task.cancelled is in the live log, filtered by task.
    driver.get(url.split("?")[0] + f"events?task={victim}")
    wait("task.cancelled on the events page", lambda: any(" task.cancelled " in ln and victim in ln for ln in text("event-rows").splitlines()))
    driver.get(url.split("?")[0] + "events")
    wait("events streaming", lambda: len(text("event-rows").splitlines()) >= 20)
    print(f"ok: task.cancelled of {victim} is on the events page", flush=True)
    driver.save_screenshot(os.path.join(shots, "events.png"))

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    if severe:
        fail(f"errors in the browser console: {severe}")
    print("ok: no errors in the browser console", flush=True)
    print("CANCELLED", victim, flush=True)
    print("REPRIORITIZED", moved, flush=True)
finally:
    driver.quit()
