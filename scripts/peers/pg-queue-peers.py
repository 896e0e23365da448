#!/usr/bin/env python3
"""No-op job throughput of two PostgreSQL-backed Python job queues, Procrastinate and PgQueuer,
on a PostgreSQL server you give it, so Cortex's cluster mode can be compared against them on the
same machine in the same run.

usage: python3 scripts/peers/pg-queue-peers.py --dsn DSN --jobs N --runs R
                                               [--peer procrastinate|pgqueuer|both]

Needs the venv made by scripts/peers/install (the script re-executes itself with
.build/peers-venv/bin/python when the libraries are not importable).

Each run is a child process (killed after --timeout s, default 300, and then reported as
{"peer":..,"error":"timeout"}) that:
  1. resets the peer's objects: each peer lives in its own PostgreSQL schema (cortex_peer_<peer>,
     selected with the connection's search_path); the schema is dropped and re-created, then the
     library installs its own tables with its own API (procrastinate: App.schema_manager
     .apply_schema_async(), the Python side of `procrastinate schema --apply`; pgqueuer:
     Queries.uninstall() / Queries.install(), the Python side of `pgq uninstall` / `pgq install`);
  2. enqueues N no-op jobs with the library's bulk API (procrastinate: Task.batch_defer_async;
     pgqueuer: Queries.enqueue with lists) and times it (enqueue_s);
  3. starts the library's worker with its default settings, except procrastinate's concurrency,
     raised from 1 to 20 (pgqueuer's max_concurrent_tasks default is already unlimited), and times
     from worker start until the database shows all N jobs finished (process_s): procrastinate
     rows in status 'succeeded', pgqueuer queue table empty with N 'successful' log rows;
  4. stops the worker cleanly (procrastinate: cancel run_worker_async, its documented graceful
     stop; pgqueuer: set QueueManager.shutdown) and checks that exactly N jobs succeeded.

stdout: one JSON object per run, then {"summary": {peer: {"median_jobs_per_s":..,"runs":[..]}}}.
Direct SQL goes through psycopg 3.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_PY = os.path.join(ROOT, ".build", "peers-venv", "bin", "python")
PEERS = ("procrastinate", "pgqueuer")
SCHEMA = {p: f"cortex_peer_{p}" for p in PEERS}
PROCRASTINATE_CONCURRENCY = 20
POLL_S = 0.002  # completion poll, only once the worker has run all N task bodies


def ensure_libraries() -> None:
    try:
        import pgqueuer  # noqa: F401
        import procrastinate  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        if os.path.exists(VENV_PY) and not os.environ.get("PG_QUEUE_PEERS_REEXEC"):
            os.environ["PG_QUEUE_PEERS_REEXEC"] = "1"
            os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])
        sys.exit("pg-queue-peers: procrastinate/pgqueuer/psycopg not importable; run scripts/peers/install")


def conninfo(dsn: str, schema: str | None = None) -> str:
    from psycopg.conninfo import make_conninfo
    return make_conninfo(dsn, options=f"-c search_path={schema}") if schema else make_conninfo(dsn)


def reset_schema(dsn: str, schema: str) -> None:
    import psycopg
    with psycopg.connect(conninfo(dsn), autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        c.execute(f"CREATE SCHEMA {schema}")


# ---------------------------------------------------------------- one run, in a child process

async def wait_done(worker_task, all_ran, done_query, n, conn) -> None:
    """Wait until every task body has run, then poll the database until all N are recorded
    as finished. Raises if the worker dies first."""
    import asyncio
    ran = asyncio.ensure_future(all_ran.wait())
    await asyncio.wait({worker_task, ran}, return_when=asyncio.FIRST_COMPLETED)
    if not ran.done():
        ran.cancel()
        worker_task.result()  # re-raise the worker's error
        raise RuntimeError("worker stopped before running all jobs")
    while True:
        if worker_task.done():
            worker_task.result()
            raise RuntimeError("worker stopped before recording all jobs")
        cur = await conn.execute(done_query)
        if (await cur.fetchone())[0]:
            return
        await asyncio.sleep(POLL_S)


async def run_procrastinate(dsn: str, n: int) -> dict:
    import asyncio
    import procrastinate
    import psycopg

    schema = SCHEMA["procrastinate"]
    reset_schema(dsn, schema)
    ci = conninfo(dsn, schema)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=ci))
    loop = asyncio.get_running_loop()
    counter = {"n": 0}
    all_ran = asyncio.Event()

    @app.task(name="noop")
    async def noop() -> None:
        counter["n"] += 1
        if counter["n"] >= n:
            all_ran.set()

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        t = time.perf_counter()
        ids = await noop.batch_defer_async(*({} for _ in range(n)))
        enqueue_s = time.perf_counter() - t
        assert len(ids) == n, len(ids)

        async with await psycopg.AsyncConnection.connect(ci, autocommit=True) as probe:
            done_q = f"SELECT count(*) = {n} FROM procrastinate_jobs WHERE status = 'succeeded'"
            t0 = time.perf_counter()
            worker = loop.create_task(app.run_worker_async(concurrency=PROCRASTINATE_CONCURRENCY))
            try:
                await wait_done(worker, all_ran, done_q, n, probe)
                process_s = time.perf_counter() - t0
            finally:
                worker.cancel()  # graceful: the worker finishes running jobs, then unregisters
                try:
                    await worker
                except asyncio.CancelledError:
                    pass
            cur = await probe.execute("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1")
            states = dict(await cur.fetchall())
    if states != {"succeeded": n}:
        raise RuntimeError(f"unexpected final job states {states}")
    return {"enqueue_s": enqueue_s, "process_s": process_s}


async def run_pgqueuer(dsn: str, n: int) -> dict:
    import asyncio
    import psycopg
    from pgqueuer import PsycopgDriver, QueueManager, Queries

    schema = SCHEMA["pgqueuer"]
    reset_schema(dsn, schema)
    ci = conninfo(dsn, schema)
    loop = asyncio.get_running_loop()
    counter = {"n": 0}
    all_ran = asyncio.Event()

    async with await psycopg.AsyncConnection.connect(ci, autocommit=True) as admin, \
            await psycopg.AsyncConnection.connect(ci, autocommit=True) as wconn, \
            await psycopg.AsyncConnection.connect(ci, autocommit=True) as probe:
        q = Queries(PsycopgDriver(admin))
        if await q.schema_is_installed():  # never after the schema drop, kept for pgq's contract
            await q.uninstall()
        await q.install()

        t = time.perf_counter()
        ids = await q.enqueue(["noop"] * n, [None] * n, [0] * n)
        enqueue_s = time.perf_counter() - t
        assert len(ids) == n, len(ids)

        qm = QueueManager(Queries(PsycopgDriver(wconn)))

        @qm.entrypoint("noop")
        async def noop(job) -> None:
            counter["n"] += 1
            if counter["n"] >= n:
                all_ran.set()

        s = qm.queries.qbe.settings
        done_q = (f"SELECT NOT EXISTS (SELECT 1 FROM {s.queue_table}) AND "
                  f"(SELECT count(*) FROM {s.queue_table_log} WHERE status = 'successful') = {n}")
        t0 = time.perf_counter()
        worker = loop.create_task(qm.run())
        try:
            await wait_done(worker, all_ran, done_q, n, probe)
            process_s = time.perf_counter() - t0
        finally:
            qm.shutdown.set()  # graceful: in-flight jobs finish, buffers flush
            try:
                await asyncio.wait_for(worker, 30)
            except asyncio.CancelledError:
                pass
        cur = await probe.execute(
            f"SELECT (SELECT count(*) FROM {s.queue_table}), "
            f"(SELECT count(*) FROM {s.queue_table_log} WHERE status = 'successful')")
        left, ok = await cur.fetchone()
    if left != 0 or ok != n:
        raise RuntimeError(f"unexpected final state: {left} queued, {ok} successful")
    return {"enqueue_s": enqueue_s, "process_s": process_s}


def child(peer: str, dsn: str, n: int) -> None:
    import asyncio
    import logging
    from importlib.metadata import version

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # The app is deliberately defined in this script; procrastinate warns about apps living in
    # __main__ (a concern for `procrastinate worker` CLI lookups only, which this does not use).
    logging.getLogger("procrastinate.blueprints").addFilter(
        lambda r: "instantiated in the main Python module" not in r.getMessage())
    fn = {"procrastinate": run_procrastinate, "pgqueuer": run_pgqueuer}[peer]
    r = asyncio.run(fn(dsn, n))
    print(json.dumps({
        "peer": peer, "version": version(peer), "jobs": n,
        "enqueue_s": round(r["enqueue_s"], 4), "process_s": round(r["process_s"], 4),
        "jobs_per_s": round(n / r["process_s"], 1),
    }), flush=True)


# ---------------------------------------------------------------- driver

def one_run(peer: str, dsn: str, n: int, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", peer, "--dsn", dsn, "--jobs", str(n)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return {"peer": peer, "error": "timeout"}
    if err.strip():
        sys.stderr.write(err)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        last = (err.strip().splitlines() or [""])[-1]
        return {"peer": peer, "error": f"exit {p.returncode}: {last}"[:500]}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--peer", choices=("procrastinate", "pgqueuer", "both"), default="both")
    ap.add_argument("--timeout", type=float, default=300.0, help="per run, seconds (default 300)")
    ap.add_argument("--child", choices=PEERS, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.jobs < 1 or a.runs < 1:
        ap.error("--jobs and --runs must be >= 1")
    ensure_libraries()
    if a.child:
        child(a.child, a.dsn, a.jobs)
        return

    peers = PEERS if a.peer == "both" else (a.peer,)
    rates: dict[str, list[float]] = {p: [] for p in peers}
    failed = 0
    for run in range(a.runs):
        for peer in peers:  # interleaved, so slow drift of a busy machine hits both alike
            r = one_run(peer, a.dsn, a.jobs, a.timeout)
            print(json.dumps(r), flush=True)
            if "jobs_per_s" in r:
                rates[peer].append(r["jobs_per_s"])
            else:
                failed += 1
    import psycopg
    for p in peers:  # leave the database as it was found
        try:
            with psycopg.connect(conninfo(a.dsn), autocommit=True) as c:
                c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA[p]} CASCADE")
        except Exception as e:  # noqa: BLE001
            print(f"pg-queue-peers: cleanup of {SCHEMA[p]} failed: {e}", file=sys.stderr)
    print(json.dumps({"summary": {
        p: {"median_jobs_per_s": round(statistics.median(v), 1) if v else None, "runs": v}
        for p, v in rates.items()}}), flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
