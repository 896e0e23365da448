"""What the browser checks share: headless Chromium from Debian driven by Selenium, a failure
that leaves a screenshot (and the browser's console), and waiting for a page to get there."""
import atexit
import os
import shutil
import subprocess
import tempfile
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def run_cli(cortex, root, fail, *args):
    """`cortex --dir ROOT ARGS`; a non-zero exit fails the check with its stderr."""
    r = subprocess.run([cortex, "--dir", root, *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"cortex {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


class Browser:
    def __init__(self, shots, failure_png):
        self.shots, self.failure_png = shots, failure_png
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Chromium's own temporary directories (org.chromium.Chromium.*) go to one of ours, removed
        # when the script ends, with the browser quit first if the script did not (a failure).
        tmp = tempfile.mkdtemp(prefix="cortex-browser-")
        service = Service("/usr/bin/chromedriver", env=dict(os.environ, TMPDIR=tmp))
        self.driver = webdriver.Chrome(service=service, options=opts)
        driver = self.driver

        def cleanup():
            try:
                driver.quit()
            except Exception:
                pass
            shutil.rmtree(tmp, ignore_errors=True)

        atexit.register(cleanup)

    def fail(self, msg):
        print("FAIL:", msg, flush=True)
        try:
            self.driver.save_screenshot(os.path.join(self.shots, self.failure_png))
            for e in self.driver.get_log("browser"):
                print("browser log:", e, flush=True)
        except Exception:
            pass
        sys.exit(1)

    def wait(self, what, cond, timeout=15):
        """Asks `cond` until it returns something true (returned), or fails naming `what`."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                v = cond()
                if v:
                    return v
            except Exception as e:  # the page may be mid-update
                last = e
            time.sleep(0.05)
        self.fail(f"timed out after {timeout} s waiting for: {what} (last error: {last})")

    def no_exceptions(self, where):
        """The page may log failed requests (the browser does), never a script error."""
        errs = [e["message"] for e in self.driver.get_log("browser")
                if "Uncaught" in e["message"] or "Content Security Policy" in e["message"]]
        if errs:
            self.fail(f"{where}: the browser's console has script errors: {errs}")
