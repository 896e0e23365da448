"""What the cluster scripts share (scripts/bench-cluster, scripts/soak-cluster): a PostgreSQL from
Debian's package started in a temporary directory (as the `postgres` user when run as root), and
Cortex nodes in directories of their own joined to one of its databases."""
import glob, json, os, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORTEX = os.path.join(ROOT, ".build/release/cortex")


def build_release():
    r = subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, text=True, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"swift build -c release failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def cortex(d, *a, input=None, check=True):
    return subprocess.run([CORTEX, "--dir", d, *a], input=input, text=True, capture_output=True, check=check)


class Postgres:
    def __init__(self, port=25432):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.dir = tempfile.mkdtemp(prefix="cortex-bench-pg-")
        self.port = port
        self.proc = None

    def dsn(self, db="postgres"):
        return f"postgresql:///{db}?host={self.dir}&port={self.port}&user=cortex"

    def psql(self, q, db="postgres"):
        return sh([f"{self.bin}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.dsn(db), "-c", q]).strip()

    def start(self):
        runas = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if runas:
            sh(["chown", "postgres", self.dir])
        sh(runas + [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "cortex", "-E", "UTF8"])
        log = open(f"{self.dir}/server.log", "a")
        self.proc = subprocess.Popen(
            runas + [f"{self.bin}/postgres", "-D", f"{self.dir}/data", "-k", self.dir, "-p", str(self.port),
                     "-c", "listen_addresses=", "-c", "max_connections=200"]
            + [x for kv in os.environ.get("PG_SETTINGS", "").split() for x in ("-c", kv)],
            stdout=log, stderr=log, start_new_session=True)
        for _ in range(300):
            if subprocess.run([f"{self.bin}/pg_isready", "-q", "-h", self.dir, "-p", str(self.port)]).returncode == 0:
                return
            time.sleep(0.1)
        sys.exit("PostgreSQL did not start")

    def probe(self, db):
        """One open connection (a psql reading queries from a pipe) for polling while a run is
        measured: a new psql per poll would fork a process and a server backend each time, CPU the
        measured nodes then lack (the peers poll over one open connection too)."""
        return Probe([f"{self.bin}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.dsn(db)])

    def fresh_db(self, name):
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name}")
        sh([CORTEX, "cluster", "migrate", "--postgres", self.dsn(name)])
        return self.dsn(name)

    def stop(self):
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=20)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class Probe:
    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def value(self, q):
        """The one value a one-row, one-column query returns."""
        self.proc.stdin.write(q.rstrip(";") + ";\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"the probe's psql ended (query: {q})")
        return line.strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def start_nodes(work, k, db_dsn, workers, lease=10.0, cluster_extra=None):
    """k nodes named n0… with `workers` workers each, an unlimited budget and queue."""
    dirs = []
    for i in range(k):
        d = f"{work}/node-{len(os.listdir(work))}-{i}"
        cortex(d, "init", "--no-start", "--workers", str(workers), "--cluster", db_dsn, "--node", f"n{i}")
        cfg = json.load(open(f"{d}/config.json"))
        cfg["cluster"]["lease_s"] = lease
        cfg["cluster"].update(cluster_extra or {})
        cfg["token_budget_total"] = 1 << 50
        cfg["max_queue"] = 10_000_000
        json.dump(cfg, open(f"{d}/config.json", "w"))
        cortex(d, "start")
        dirs.append(d)
    return dirs


def stop_nodes(dirs, remove=True):
    for d in dirs:
        cortex(d, "stop", "--timeout", "5", check=False)
        if remove:
            shutil.rmtree(d, ignore_errors=True)
