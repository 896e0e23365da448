#!/usr/bin/env python3
"""Pages left open while the daemon stops and starts again (WebBrowserTests.testPagesOpenAcrossARestart).

Usage: restart-browser-test.py CORTEX_BINARY COORDINATION_DIR URL_WITH_TOKEN SCREENSHOT_DIR TASK_ID
TASK_ID is a running task that prints a line every half second. The daemon listens on a fixed
port (set in config.json by the test), so after the restart the open page reaches the new daemon,
which has a new token: its old cookie is refused until someone signs in with the new address.
Prints one line per check; exits 1 with the reason on the first failure.
"""
import json
import sys
import time

from selenium.webdriver.common.by import By

from driving import Browser, run_cli

cortex, root, url, shots, victim = sys.argv[1:6]
base = url.split("?")[0]


def cli(*args):
    return run_cli(cortex, root, fail, *args)


def text(id_):
    return driver.find_element(By.ID, id_).get_attribute("textContent")


browser = Browser(shots, "restart-failure.png")
driver, fail, wait = browser.driver, browser.fail, browser.wait
no_exceptions = browser.no_exceptions
try:
    driver.get(url)
    wait("the overview", lambda: driver.find_elements(By.CSS_SELECTOR, "#grid .tile"))
    driver.get(base + "tasks/" + victim)
    wait(f"{victim}'s output", lambda: "line 2" in text("task-output"))
    if driver.find_element(By.ID, "conn-note").is_displayed():
        fail(f"a live page shows the connection note: {text('conn-note')!r}")
    print(f"ok: {victim}'s page is live and shows its output", flush=True)

    # 1. The daemon stops: the page says so in words, and an action says it reached nobody.
    cli("stop")
    wait("the page to say the daemon does not answer", lambda: "no answer from the daemon" in text("conn-note") and driver.find_element(By.ID, "conn-note").is_displayed())
    print(f"ok: stopped: {text('conn-note')!r}", flush=True)
    driver.find_element(By.ID, "cancel-btn").click()
    wait("Cancel to say the daemon does not answer", lambda: "no answer from the daemon" in text("action-msg"))
    print(f"ok: Cancel with the daemon stopped says: {text('action-msg')!r}", flush=True)
    no_exceptions("with the daemon stopped")

    # 2. It starts again on the same port with a new token: the page says it is signed out.
    started = cli("start").stderr
    new_url = next((ln.split()[-1] for ln in started.splitlines() if "dashboard at " in ln), None)
    if not new_url or not new_url.startswith(base):
        fail(f"cortex start printed no dashboard at {base}: {started!r}")
    wait("the page to say it is not signed in", lambda: "authentication required" in text("conn-note"), timeout=20)
    print(f"ok: restarted with a new token: {text('conn-note')!r}", flush=True)
    no_exceptions("after the restart")

    # 3. Signing in with the new address in a second tab makes the first one live again.
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(new_url)
    wait("the second tab's overview", lambda: driver.find_elements(By.CSS_SELECTOR, "#grid .tile"))
    driver.switch_to.window(first)
    wait("the first tab to be live again", lambda: text("live") == "live" and not driver.find_element(By.ID, "conn-note").is_displayed(), timeout=20)
    state = json.loads(cli("show", victim, "--json").stdout)["state"]
    wait(f"the page to show {victim} {state} as cortex show does", lambda: text("task-title").endswith("· " + state) or json.loads(cli("show", victim, "--json").stdout)["state"] != state)
    print(f"ok: the first tab is live again: {text('task-title')!r}", flush=True)
    no_exceptions("after signing in again")

    # 4. A page that does not exist is styled without breaking the Content-Security-Policy.
    driver.get(base + "nothing-here")
    wait("the 404 page", lambda: "No page" in driver.find_element(By.TAG_NAME, "h1").text)
    no_exceptions("on the 404 page")
    print("ok: the 404 page loads with no console error", flush=True)
finally:
    driver.quit()
