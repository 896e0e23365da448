/// Per priority, the groups a dispatch decision must look at: every group that may start a task
/// at that priority now, and perhaps some that may not (a superset). A decision looks only at
/// these; one that finds a group held takes it out — `remove` when it is paused or full (what
/// lifts that hold is an input: a task ends, `resume`, `group set`, which puts the group back
/// with `insert`), `park` when its rate limit holds it until a known time (a small heap wakes it
/// then; anything that may make it ready sooner puts it back at once). So with 50 groups of which
/// most are full or waiting, a decision touches the few that may start, not all 50.
///
/// Pure and cheap: one bit per group and priority (iterated in group order, which keeps the
/// decisions and their `task.waiting` events exactly those of a scan of every group), and a
/// binary heap of refill times.
public struct StartableGroups: Sendable {
  static let priorities = Priority.allCases.count
  /// Per priority, a bit per group.
  private(set) var bits: [[UInt64]] = Array(repeating: [], count: priorities)
  /// Per group and priority (`g * priorities + p`): the time a parked pair wakes, `.min` when not parked.
  private var parkedUntil: [Int64] = []
  /// Parked pairs by wake time, smallest first; an entry whose pair was put back or parked again
  /// since is stale and skipped when it comes out.
  private var refills: [Refill] = []

  struct Refill: Sendable {
    let at: Int64
    let slot: Int
  }

  public init() {}

  public func contains(_ g: Int, _ p: Int) -> Bool {
    let w = g >> 6
    return w < bits[p].count && bits[p][w] & (1 << UInt64(g & 63)) != 0
  }

  /// In the set, or parked until `now` or earlier (put back by the next `wake`).
  public func covers(_ g: Int, _ p: Int, now: Int64) -> Bool {
    let slot = g * Self.priorities + p
    return contains(g, p) || (slot < parkedUntil.count && parkedUntil[slot] != .min && parkedUntil[slot] <= now)
  }

  /// Group `g` may start a task at priority `p`: a decision looks at it again.
  public mutating func insert(_ g: Int, _ p: Int) {
    let w = g >> 6
    if w >= bits[p].count {
      for q in 0..<Self.priorities { bits[q].append(contentsOf: repeatElement(0, count: w + 1 - bits[q].count)) }
    }
    bits[p][w] |= 1 << UInt64(g & 63)
    let slot = g * Self.priorities + p
    if slot < parkedUntil.count { parkedUntil[slot] = .min }
  }

  /// Group `g` cannot start a task at priority `p` until an input says otherwise.
  public mutating func remove(_ g: Int, _ p: Int) {
    let w = g >> 6
    guard w < bits[p].count else { return }
    bits[p][w] &= ~(1 << UInt64(g & 63))
  }

  /// Group `g` cannot start a task at priority `p` before `at` (its rate limit), unless an input
  /// puts it back sooner.
  public mutating func park(_ g: Int, _ p: Int, until at: Int64) {
    remove(g, p)
    let slot = g * Self.priorities + p
    if slot >= parkedUntil.count { parkedUntil.append(contentsOf: repeatElement(.min, count: slot + 1 - parkedUntil.count)) }
    parkedUntil[slot] = at
    refills.append(Refill(at: at, slot: slot))
    var i = refills.count - 1
    while i > 0 {
      let up = (i - 1) / 2
      if refills[up].at <= refills[i].at { break }
      refills.swapAt(up, i)
      i = up
    }
  }

  /// The time the next parked pair wakes, if any (stale entries included: waking early is safe).
  public var nextRefillMs: Int64? { refills.first?.at }

  /// Puts back every pair parked until `now` or earlier.
  public mutating func wake(now: Int64) {
    while let top = refills.first, top.at <= now {
      popRefill()
      if parkedUntil[top.slot] == top.at {
        insert(top.slot / Self.priorities, top.slot % Self.priorities)
      }
    }
  }

  private mutating func popRefill() {
    let last = refills.removeLast()
    guard !refills.isEmpty else { return }
    refills[0] = last
    var i = 0
    while true {
      let l = 2 * i + 1
      let r = l + 1
      var m = i
      if l < refills.count && refills[l].at < refills[m].at { m = l }
      if r < refills.count && refills[r].at < refills[m].at { m = r }
      if m == i { return }
      refills.swapAt(m, i)
      i = m
    }
  }

  /// The groups in the set at priority `p`, in order (for tests and diagnostics).
  public func members(_ p: Int) -> [Int] {
    var out: [Int] = []
    for (w, word) in bits[p].enumerated() {
      var rest = word
      while rest != 0 {
        out.append(w << 6 | rest.trailingZeroBitCount)
        rest &= rest - 1
      }
    }
    return out
  }

  /// The parked (group, priority) pairs that are still current (for tests).
  public var parkedCount: Int { parkedUntil.reduce(0) { $0 + ($1 != .min ? 1 : 0) } }
}
