#!/usr/bin/env python3
"""What holds a queued task, on its page (WebBrowserTests.testTheTaskPageSaysWhatHoldsAQueuedTask).

Usage: heldby-browser-test.py CORTEX_BINARY COORDINATION_DIR URL_WITH_TOKEN SCREENSHOT_DIR ID ...
Each ID is a queued task that something holds (its group's limit, a pause, a dependency). Its
page's facts must say what, as `cortex show ID` does: the `queue` line with `held_by` (position N;
estimated start when its group can start it ... / after cortex resume ...), and `waiting`. The
page used to show only a queue position and no estimated start.
Prints one line per check; exits 1 with the reason on the first failure.
"""
import sys

from selenium.webdriver.common.by import By

from driving import Browser, run_cli

cortex, root, url, shots = sys.argv[1:5]
ids = sys.argv[5:]

browser = Browser(shots, "heldby-failure.png")
driver, fail, wait = browser.driver, browser.fail, browser.wait
try:
    base = url.split("?")[0]
    driver.get(url)  # the token becomes a cookie
    for i, tid in enumerate(ids):
        shown = run_cli(cortex, root, fail, "show", tid).stdout
        rows = dict(line.split(None, 1) for line in shown.splitlines() if line.startswith(("queue ", "waiting ")))
        if not rows:
            fail(f"cortex show {tid} names nothing that holds it:\n{shown}")
        driver.get(base + "tasks/" + tid)
        facts = lambda: driver.find_element(By.ID, "task-facts").get_attribute("textContent")
        for key, value in rows.items():
            wait(f"{tid}'s page to say {key} {value!r} as cortex show does", lambda: key + value.strip() in facts())
        print(f"ok: {tid}: {facts()}", flush=True)
        driver.save_screenshot(f"{shots}/task-held-{i + 1}.png")
    browser.no_exceptions("on the task pages")
finally:
    driver.quit()
