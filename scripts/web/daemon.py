"""A daemon for the web measurements: `cortex init` in WORK/d, the settings given merged into its
config.json, `cortex start`; returns the directory and a `cli(*args)` bound to it, which exits the
script with cortex's stderr when a command fails."""
import json, os, subprocess


def start(binary, work, **settings):
    d = os.path.join(work, "d")

    def cli(*a):
        r = subprocess.run([binary, "--dir", d, *a], capture_output=True, text=True, timeout=600)
        if r.returncode: raise SystemExit(f"cortex {' '.join(a)}: {r.stderr}")
        return r.stdout

    cli("init", "--no-start")
    p = os.path.join(d, "config.json")
    c = json.load(open(p)); c.update(settings)
    json.dump(c, open(p, "w"))
    cli("start", "--timeout", "60")
    return d, cli
