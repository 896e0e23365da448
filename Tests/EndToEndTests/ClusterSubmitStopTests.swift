import CortexCore
import Posix
import XCTest

/// A submit the daemon still owes an answer to when it stops (`cortex stop`): in cluster mode a
/// submit is answered after the database commits it, and a stop does not wait for that. The
/// daemon answers 69 `daemon_stopped`, and the submit says that whether the task was accepted is
/// not known (the batch may have committed), not that it was refused.
final class ClusterSubmitStopTests: ClusterTestCase {
  func testASubmitOwedWhenTheNodeStopsSaysWhetherItWasAcceptedIsNotKnown() throws {
    let a = try startNode("a", workers: 1, leaseS: 5)
    // A session that holds a lock every submit needs (`nextval` of the task ids waits while the
    // sequence is being altered): the node's submit waits in the database, deterministically.
    let psqlOut = a.scratch + "/lock.out"
    let o = try FileDescriptor.open(psqlOut, [.writeOnly, .create, .truncate])
    let holder = try Processes.spawn(
      [
        try XCTUnwrap(Postgres.bin) + "/psql", "-X", "-q", pg.dsn, "-c",
        "BEGIN; ALTER SEQUENCE cortex_task_id_seq CACHE 1; SELECT pg_sleep(120); COMMIT;",
      ], environment: Environment.all(), stdin: nil, stdout: o, stderr: o, newProcessGroup: false)
    o.close()
    defer {
      _ = Processes.signal(holder, Signal.kill)
      _ = Processes.wait(holder)
    }
    a.eventually("the lock is held") {
      sql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'cortex_task_id_seq' AND l.granted")
        != "0"
    }
    let submit = try a.background(["submit", "--no-env", "--", "true"])
    a.eventually("the node's submit waits for the lock") {
      sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%nextval%generate_series%'") != "0"
    }
    XCTAssertTrue(Processes.isAlive(submit.pid), "the submit ended before the stop")

    let stop = a.run(["stop"], timeoutS: 60)
    XCTAssertEqual(stop.code, 0, stop.err)
    let answered = a.collect(submit)
    XCTAssertEqual(answered.code, 69, "submit: \(answered.err)")
    XCTAssertTrue(answered.err.contains("the daemon stopped (cortex stop, or SIGTERM) before it answered (daemon_stopped)"), answered.err)
    XCTAssertTrue(answered.err.contains("cortex start --dir \(a.root), then cortex list"), answered.err)
    XCTAssertTrue(answered.err.contains("whether the task was accepted is not known"), answered.err)
    XCTAssertTrue(answered.err.contains("--idempotency-key"), answered.err)
    XCTAssertFalse(answered.err.contains("refused"), answered.err)
    XCTAssertEqual(answered.out, "", "the submit printed an id it was not given")
  }
}
