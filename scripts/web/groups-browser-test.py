#!/usr/bin/env python3
"""The overview's Groups card (WebBrowserTests.testTheGroupsCardShowsAPausedGroupAndResumesIt).

Usage: groups-browser-test.py CORTEX_BINARY COORDINATION_DIR URL_WITH_TOKEN SCREENSHOT_DIR GROUP [cluster]
GROUP is paused, with a parallel limit and tasks queued in it. The card must show it paused with
the counts `cortex group` shows, follow a limit set from the command line without a reload (the
status stream's `groups` message), and resume it on a click of its Resume button. With
`cluster` (ClusterWebTests.testNodeAsGroupsShowTheClustersCounts) the counts are the whole
cluster's, as `cortex group --json` reads them from the database (`cluster_groups`).
Prints one line per check; exits 1 with the reason on the first failure.
"""
import json
import os
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from driving import Browser, run_cli

cortex, root, url, shots, name = sys.argv[1:6]
cluster = sys.argv[6:7] == ["cluster"]
mark = " (cluster)" if cluster else ""


def cli(*args):
    return run_cli(cortex, root, fail, *args).stdout


def cells():
    row = driver.find_element(By.CSS_SELECTOR, f'#group-rows tr[data-group="{name}"]')
    return [td.get_attribute("textContent") for td in row.find_elements(By.TAG_NAME, "td")]


def cli_group(scope="groups"):
    return next(g for g in json.loads(cli("--json", "group"))[scope] if g["name"] == name)


browser = Browser(shots, "groups-failure.png")
driver, fail, wait = browser.driver, browser.fail, browser.wait
no_exceptions = browser.no_exceptions
try:
    driver.get(url)
    wait("the Groups card", lambda: driver.find_element(By.ID, "groups-card").is_displayed())
    wait(f"group {name} shown paused", lambda: cells()[1] == "paused")

    # 1. The counts are those of `cortex group`.
    def counts_match():
        g, c = cli_group("cluster_groups" if cluster else "groups"), cells()
        want = f"{g['running']} / {g['parallel'] or '–'}{mark}"
        return c[2] == want and c[3] == f"{g['queued']}{mark}" and c
    got = wait(f"the card's counts of {name} to match cortex group", counts_match)
    if got[4] != "Resume":
        fail(f"a paused group's button says {got[4]!r}, not Resume")
    print(f"ok: {name} on the overview: {got}", flush=True)

    # 2. Live: a limit set from the command line reaches the card without a reload.
    cli("group", "set", name, "--parallel", "3")
    wait(f"the card to show {name}'s new limit", lambda: cells()[2].endswith("/ 3" + mark))
    print(f"ok: cortex group set reached the open page: {cells()}", flush=True)
    driver.save_screenshot(os.path.join(shots, "cluster-groups.png" if cluster else "groups.png"))

    # 2b. The page sets a limit (cortex group set, the daemon's decision), and refuses an empty box.
    driver.find_element(By.ID, "limit-input").clear()
    driver.find_element(By.ID, "limit-btn").click()
    wait("an empty limit box to be refused in words", lambda: "type its limit" in driver.find_element(By.ID, "groups-msg").get_attribute("textContent"))
    Select(driver.find_element(By.ID, "limit-group")).select_by_value(name)
    driver.find_element(By.ID, "limit-input").send_keys("2")
    driver.find_element(By.ID, "limit-btn").click()
    wait(f"the card to say {name}'s limit is 2", lambda: f"group {name}: limit 2" in driver.find_element(By.ID, "groups-msg").get_attribute("textContent"))
    wait(f"cortex group to say {name}'s limit is 2", lambda: cli_group()["parallel"] == 2)
    wait(f"the card to show {name}'s limit 2", lambda: cells()[2].endswith("/ 2" + mark))
    print(f"ok: the page set {name}'s limit: {cells()}", flush=True)

    # 3. A click on Resume resumes it (the daemon's decision; the test finds it in the log).
    driver.find_element(By.CSS_SELECTOR, f'#group-rows tr[data-group="{name}"] button').click()
    wait("the card to say the group resumed", lambda: f"group {name} resumed" in driver.find_element(By.ID, "groups-msg").get_attribute("textContent"))
    wait(f"{name} shown running with a Pause button", lambda: cells()[1] in ("running", "at limit") and cells()[4] == "Pause")
    if cli_group()["paused"]:
        fail(f"cortex group says {name} is still paused after the click")
    print(f"RESUMED {name}: {cells()}", flush=True)
    no_exceptions("on the overview")
finally:
    driver.quit()
