import CortexCore

extension DoctorCommand {
  /// `checkLogOnce`, again from a fresh listing when a segment disappeared under it: a running
  /// daemon's retention removes the oldest segments while `doctor` reads them, and a segment
  /// listed then gone was reported as "cannot read" (FAIL), failing
  /// `RetentionTests.testRemovedSegmentsCanBeArchivedAndCompressed` once in CI. The findings of
  /// an attempt cut short are dropped; the third attempt's stand, whatever happened.
  static func checkLog(_ p: Paths, repair: Bool, _ add: (Finding.Level, String) -> Void) -> LogSummary {
    var attempt = 0
    while true {
      attempt += 1
      var found: [Finding] = []
      var vanished = false
      let s = checkLogOnce(p, repair: repair, vanished: &vanished) { found.append(Finding(level: $0, what: $1)) }
      if !vanished || attempt == 3 {
        for f in found { add(f.level, f.what) }
        if vanished { add(.warn, "the log's segments kept changing while they were read (a daemon removing old ones): run doctor again") }
        return s
      }
    }
  }
}
