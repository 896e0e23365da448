#!/usr/bin/env python3
"""A task's page as a new user meets it (WebBrowserTests.testTheTaskPageKeepsLongAndColouredOutputReadable).

Usage: taskpage-browser-test.py CORTEX_BINARY COORDINATION_DIR URL_WITH_TOKEN SCREENSHOT_DIR LOUD_TASK RUNNING_TASK
LOUD_TASK has finished; its output has ANSI colours, HTML and a line of 5,000 characters, and its
spec a long shell string. RUNNING_TASK runs. Prints one line per check; exits 1 with the reason
on the first failure.
"""
import sys

from selenium.webdriver.common.by import By

from driving import Browser

cortex, root, url, shots, loud, running = sys.argv[1:7]
base = url.split("?")[0]
browser = Browser(shots, "taskpage-failure.png")
driver, fail, wait = browser.driver, browser.fail, browser.wait


def text(id_):
    return driver.find_element(By.ID, id_).get_attribute("textContent")


def style(id_, prop):
    return driver.execute_script(f"return getComputedStyle(document.getElementById('{id_}')).{prop}")


try:
    driver.get(url)
    wait("the overview", lambda: driver.find_elements(By.CSS_SELECTOR, "#grid .tile"))
    driver.get(base + "tasks/" + loud)
    wait(f"{loud}'s output", lambda: "done" in text("task-output"))
    wait(f"{loud}'s state", lambda: "succeeded" in text("task-title"))
    out = text("task-output")
    # 1. Colours are a terminal's, not text: the escape sequences are not shown.
    if "\x1b" in out or "[31m" in out or "[0m" in out:
        fail(f"the output shows ANSI escape sequences as text: {out[:80]!r}")
    if "RED <b>bold</b> <script>x</script>" not in out:
        fail(f"the output does not show the task's text as text: {out[:120]!r}")
    print("ok: the output shows the text without its colour codes, and HTML as text", flush=True)
    # 2. A line of 5,000 characters scrolls inside its box; the page itself does not get wider.
    wide = driver.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    if wide[0] > wide[1]:
        driver.save_screenshot(shots + "/taskpage-wide.png")
        fail(f"the page is wider than the window ({wide[0]} > {wide[1]} px): long lines push it sideways")
    print(f"ok: long lines scroll in their boxes, the page is {wide[0]} px of {wide[1]}", flush=True)
    # 3. Controls that do not apply look it: a finished task's Cancel is not drawn as a live button.
    if not driver.find_element(By.ID, "cancel-btn").get_attribute("disabled"):
        fail("Cancel is enabled on a finished task")
    if style("cancel-btn", "cursor") != "not-allowed" or float(style("cancel-btn", "opacity")) >= 0.8:
        fail(f"a disabled Cancel looks like one that works (cursor {style('cancel-btn', 'cursor')}, opacity {style('cancel-btn', 'opacity')})")
    print("ok: a finished task's Cancel looks disabled", flush=True)
    # 4. Cancel of a running task says what happened in words.
    driver.get(base + "tasks/" + running)
    wait(f"{running} running", lambda: "running" in text("task-title"))
    if style("cancel-btn", "cursor") == "not-allowed":
        fail("an enabled Cancel looks disabled")
    driver.find_element(By.ID, "cancel-btn").click()
    wait("Cancel's answer", lambda: text("action-msg") not in ("", "cancel…"))
    said = text("action-msg")
    if said != f"{running}: cancelled":
        fail(f"Cancel answered {said!r}, not {running}: cancelled")
    print(f"ok: Cancel says {said!r}", flush=True)
    driver.save_screenshot(shots + "/task-cancelled.png")
    browser.no_exceptions("on the task page")
finally:
    driver.quit()
