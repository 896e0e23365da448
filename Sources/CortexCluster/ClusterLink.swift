public import CortexCore
public import Posix
import Synchronization

/// The cluster adapter's worker: one thread that owns the database connection, so the daemon's
/// loop never waits on PostgreSQL. The loop hands it requests (`submit`, `complete`, `claim`,
/// `running`) and reads back `Event`s when `wakeFD` is readable. The thread renews the lease every
/// lease/3 in database time, reconnects when the server comes back, rescues lapsed nodes when it
/// wins the leader lock, and reports `fenced` when this node can no longer prove its lease (it
/// must then stop its running tasks): a node that cannot renew stops itself.
public final class ClusterLink: Sendable {
  struct Inbox: Sendable {
    var submits: [(UInt64, [ClusterStore.NewTask])] = []
    /// Submits of an inbox file by ticket; moved files whose records go (ClusterLink+Inbox).
    var submitInbox: [UInt64: ClusterStore.InboxFile] = [:]
    var inboxForgets: [(name: String, ids: [Int])] = []
    var maxQueue = Int.max
    var completions: [Completion] = []
    var runs: [Run] = []
    var wantClaims = 0
    var startable = 0
    var running: [Int] = []
    var cancels: [Int] = []
    var watches: [(UInt64, [Int])] = []
    var describes: [(UInt64, Int)] = []
    var lists: [(ticket: UInt64, state: String?, type: String?, limit: Int)] = []
    var retries: [(ticket: UInt64, ids: [Int], allFailed: Bool)] = []
    var pauses: [(ticket: UInt64, paused: Bool)] = []
    var groupChanges: [(ticket: UInt64, group: String, change: GroupChange)] = []
    var seeds: [[String: Int]] = []
    var edits: [(ticket: UInt64, id: Int, change: @Sendable (String, String?) -> Result<ClusterStore.Edited, ClusterError>)] = []
    var stopping = false
  }

  public let settings: ClusterSettings
  public let node: String
  let host: String
  let pid: Int32
  let workers: Int
  let budgetTotal: Int
  let inbox = Mutex(Inbox())
  let outbox = Mutex<[Event]>([])
  let epochNow = Atomic<Int64>(0)
  /// The lease as this node's own clock sees it, and the thread that fences by it
  /// (`ClusterLink+Lease.swift`).
  let lease: LeaseWatch
  /// The cluster as last read (`ClusterStatus` as JSON, with `node` and `read_ms`), and when the
  /// web view last asked for it: read about once a second, and only while someone asks.
  /// The web view's snapshot: when it was last asked for and last read (monotonic ms), and itself.
  let snapshot = Mutex<(askedMs: Int64, readMs: Int64, view: JSON?)>((.min / 2, .min / 2, nil))
  /// Running tasks the snapshot lists, at most.
  static let snapshotRunningLimit = 4096
  /// This node's web address to publish (and whether the current membership has it), and the
  /// other nodes' addresses as last read (`ClusterLink+Web.swift`).
  let web = Mutex(WebShare())
  /// Readable when events wait in `events()`.
  public let wakeFD: FileDescriptor
  let wakeWrite: FileDescriptor
  let kickRead: FileDescriptor
  let kickWrite: FileDescriptor

  public init(settings: ClusterSettings, node: String, host: String, pid: Int32, workers: Int, budgetTotal: Int) throws(PosixError) {
    self.settings = settings
    self.node = node
    self.host = host
    self.pid = pid
    self.workers = workers
    self.budgetTotal = budgetTotal
    lease = LeaseWatch(leaseMs: Numbers.ms(fromSeconds: settings.leaseS), renewedMs: Clock.monotonicMs())
    let w = try makePipe(nonBlocking: true)
    let k = try makePipe(nonBlocking: true)
    wakeFD = w.read
    wakeWrite = w.write
    kickRead = k.read
    kickWrite = k.write
  }

  /// The epoch of the current membership (0 before the first join).
  public var epoch: Int64 { epochNow.load(ordering: .acquiring) }

  /// Connects and joins before returning (so a wrong DSN or a name already alive stops the start
  /// with its message), then runs the link's thread. `replay`: terminal states the previous run
  /// of this node could not deliver; they are delivered first, under the claims they end, before
  /// the new epoch fences those claims.
  /// `groupLimits`: the config's `parallel` per group, for groups the cluster does not list yet.
  /// `previousPid`: the pid of this directory's previous daemon (its `daemon.pid`, left by a
  /// kill -9 or a crash): a live-looking holder of the name is taken over only when it is that
  /// process and it is gone. A host name and a pid do not tell a host: hosts cloned from one
  /// image share a name, and another host's pid means nothing here.
  /// Returns the inbox files this node submitted and had not moved when it stopped.
  public func start(
    replay: [Completion] = [], groupLimits: [String: Int] = [:], previousPid: Int32? = nil,
    migrate: String = "cortex cluster migrate"
  ) throws(ClusterError) -> [ClusterStore.InboxRecord] {
    let store = try ClusterStore(connect(), node: node)
    try store.listen()
    if !replay.isEmpty {
      var accepted = 0
      for chunk in stride(from: 0, to: replay.count, by: 500).map({ replay[$0..<min($0 + 500, replay.count)] }) {
        accepted += try store.complete(
          chunk.map { ($0.id, $0.attempt, $0.epoch, $0.state, $0.reason, $0.exitCode, $0.tokensUsed, $0.ran) }
        ).count
      }
      post([.replayed(accepted: accepted, refused: replay.count - accepted)])
    }
    let joining = Clock.monotonicMs()
    try store.join(
      leaseS: settings.leaseS, host: host, pid: pid, workers: workers, budgetTotal: budgetTotal, migrate: migrate,
      holderGone: { $0 == previousPid && !Processes.isAlive($0) })
    lease.joined(at: joining)
    epochNow.store(store.epoch, ordering: .releasing)
    try store.seedGroups(groupLimits)
    let unmoved = try store.pendingInbox()
    post([.joined(epoch: store.epoch)])
    let box = StoreBox(store)
    do throws(PosixError) {
      try startThread { [self] in self.run(box.take()) }
      try startLeaseWatch()
    } catch {
      throw ClusterError(.connect, "cannot start the cluster link thread: \(error)")
    }
    return unmoved
  }

  // MARK: the loop's side

  /// `inbox`: the inbox file the batch comes from (recorded in the submit's transaction).
  public func submit(ticket: UInt64, _ tasks: [ClusterStore.NewTask], maxQueue: Int = Int.max, inbox file: ClusterStore.InboxFile? = nil) {
    request {
      $0.submits.append((ticket, tasks))
      if let file { $0.submitInbox[ticket] = file }
      $0.maxQueue = maxQueue
    }
  }
  public func complete(_ c: Completion) { request { $0.completions.append(c) } }
  /// Runs of claimed tasks that started or ended (written with the next round, all together).
  public func ran(_ r: [Run]) { request { $0.runs += r } }
  /// How many more tasks the node wants (its workers' free places and a queue ahead), and how
  /// many of them it could start at once (replaces the previous wish). A limited group's tasks
  /// are claimed only into the second: one claimed here to wait for a worker would hold a slot
  /// of the group that an idle node could have used.
  public func wantClaims(_ n: Int, startable: Int) {
    request {
      $0.wantClaims = n
      $0.startable = min(n, startable)
    }
  }
  /// The ids running here (for cancel requests and the node's load).
  public func running(_ ids: [Int]) { inbox.withLock { $0.running = ids } }
  /// Marks tasks for cancellation cluster-wide (the owner stops them).
  public func cancel(_ ids: [Int]) { request { $0.cancels.append(contentsOf: ids) } }
  public func stop() { request { $0.stopping = true } }
  /// Reports `described(ticket, …)`: one task as the cluster knows it.
  public func describe(ticket: UInt64, _ id: Int) { request { $0.describes.append((ticket, id)) } }

  /// Reports `edited(ticket, …)`: `change` applied to a queued task's spec (`ClusterStore.edit`).
  public func edit(
    ticket: UInt64, _ id: Int, _ change: @escaping @Sendable (String, String?) -> Result<ClusterStore.Edited, ClusterError>
  ) {
    request { $0.edits.append((ticket, id, change)) }
  }

  /// Reports `queuePauseSet(ticket, …)`, then `queuePaused` if it changed. A resume also resumes
  /// every paused group (then `groups`).
  public func setQueuePaused(ticket: UInt64, _ paused: Bool) { request { $0.pauses.append((ticket, paused)) } }

  /// A reloaded config's `parallel` limits, for groups the cluster does not list yet (as at
  /// `start`); reports `groups` if they changed. Lost if the database is unreachable.
  public func seedGroups(_ limits: [String: Int]) { request { $0.seeds.append(limits) } }

  /// Reports `groupSet(ticket, …)`, then `groups` if they changed.
  public func setGroup(ticket: UInt64, _ group: String, _ change: GroupChange) {
    request { $0.groupChanges.append((ticket, group, change)) }
  }

  /// Reports `retrySources(ticket, …)`: the specs a `retry` submits again.
  public func retrySources(ticket: UInt64, ids: [Int], allFailed: Bool) {
    request { $0.retries.append((ticket, ids, allFailed)) }
  }
  /// Reports `listed(ticket, …)`: the newest tasks cluster-wide.
  public func list(ticket: UInt64, state: String?, type: String?, limit: Int) {
    request { $0.lists.append((ticket, state, type, limit)) }
  }
  /// Reports `finished(ticket, …)` once every one of `ids` has ended (or is unknown).
  public func watch(ticket: UInt64, _ ids: [Int]) { request { $0.watches.append((ticket, ids)) } }

  /// The events since the last call.
  public func events() -> [Event] {
    var b: [UInt8] = []
    _ = try? wakeFD.read(appendingTo: &b, max: 256)
    return outbox.withLock { o in
      let e = o
      o.removeAll()
      return e
    }
  }

  func request(_ change: (inout Inbox) -> Void) {
    inbox.withLock { change(&$0) }
    _ = try? kickWrite.writeSome([1])
  }

  func post(_ e: [Event]) {
    guard !e.isEmpty else { return }
    outbox.withLock { $0.append(contentsOf: e) }
    _ = try? wakeWrite.writeSome([1])
  }

  // MARK: the link's thread

  func run(_ first: ClusterStore) {
    var store: ClusterStore? = first
    let leaseMs = Numbers.ms(fromSeconds: settings.leaseS)
    defer { lease.stop() }
    var lastRenewTry = Clock.monotonicMs()
    // The cluster's queue pause as last read (nil: not yet): the daemon hears of each change.
    var queuePaused: Bool? = nil
    // The groups the cluster lists, and what the held ones have running and queued.
    var groups = GroupWatch()
    var lastRescue: Int64 = 0
    // No rescue before this (monotonic ms): set when the link comes back from an outage.
    var rescueAfter: Int64 = 0
    var lastCancelCheck: Int64 = 0
    var down = false
    var pendingCompletions: [Completion] = []
    var pendingRuns: [Int: Run] = [:]
    // Cancels asked for and not yet written (kept through an outage, as completions are: a
    // cancel dropped while PostgreSQL was unreachable let the task run again after its rescue,
    // and `cortex cancel` wait until it ended by itself).
    var pendingCancels: [Int] = []
    var watches: [(UInt64, [Int])] = []
    var lastWatch: Int64 = 0
    var b: [UInt8] = []
    var busy = false
    var lastClaim: Int64 = 0
    var lastSettle: Int64 = 0
    var lastSnapshot: Int64 = 0
    // While PostgreSQL cannot be reached: when to try again, backing off from 100 ms to a second
    // (a renewal overdue since the outage must not turn the wait below into a 1 ms spin).
    var nextReconnect: Int64 = 0
    var reconnectDelay: Int64 = 100
    var connected: Bool { store?.db.isConnected == true }
    while true {
      // Sleep until the loop asks for something or PostgreSQL sends a hint (LISTEN/NOTIFY),
      // at most until the next periodic duty — and at most a second, the polling backstop —
      // unless the last claim came back full (more is likely waiting): then go straight on.
      var hinted = false
      var cancelHinted = false
      var groupsHinted = false
      if !busy {
        let t0 = Clock.monotonicMs()
        var timeout = min(1000, max(1, connected ? leaseMs / 3 - (t0 - lastRenewTry) : nextReconnect - t0))
        if !watches.isEmpty { timeout = min(timeout, 100) }
        let sock = connected ? store!.db.socket : -1
        _ = FileDescriptor.waitReadable(sock >= 0 ? [kickRead.raw, sock] : [kickRead.raw], timeoutMs: Int32(timeout))
      }
      // Hints may also have arrived during the last round's statements (libpq keeps them).
      for channel in store?.db.notifications() ?? [] {
        switch channel {
        case "cortex_cancel": cancelHinted = true
        case "cortex_groups": groupsHinted = true
        default: hinted = true
        }
      }
      busy = false
      b.removeAll(keepingCapacity: true)
      _ = try? kickRead.read(appendingTo: &b, max: 256)
      let kicked = !b.isEmpty
      var work = inbox.withLock { i -> Inbox in
        let w = i
        i.submits.removeAll()
        i.submitInbox.removeAll()
        i.completions.removeAll()
        i.runs.removeAll()
        i.cancels.removeAll()
        i.watches.removeAll()
        i.describes.removeAll()
        i.lists.removeAll()
        i.retries.removeAll()
        i.pauses.removeAll()
        i.groupChanges.removeAll()
        i.seeds.removeAll()
        i.edits.removeAll()
        return w
      }
      pendingCompletions += work.completions
      for r in work.runs { pendingRuns[r.id] = r }
      pendingCancels += work.cancels
      watches += work.watches
      var out: [Event] = []
      let now = Clock.monotonicMs()

      // A node that has not renewed for most of its lease stops its work before anyone else
      // can have been given it (self-fencing; the lease watch's thread does the same while this
      // one waits on a statement).
      if let late = lease.overdue(now: now), lease.fence() {
        out.append(.fenced(LeaseWatch.overdueReason(late, of: leaseMs)))
      }

      if !connected && now >= nextReconnect {
        // A fenced node whose lease has lapsed joins again below, once it has delivered what it
        // finished meanwhile; one not lapsed yet connects under its membership and joins once it has.
        store = reconnect()
        if store == nil {
          nextReconnect = now + reconnectDelay
          reconnectDelay = min(reconnectDelay * 2, 1000)
        } else {
          reconnectDelay = 100
        }
        if store != nil {
          if down {
            down = false
            out.append(.available)
            // Every node's lease may have lapsed in the same outage (a database restart): give
            // the others a lease to come back and deliver what they finished before this node
            // rescues their claims (docs/cluster.md, "A database outage longer than the lease").
            rescueAfter = now + leaseMs
          }
        } else if !down {
          down = true
          out.append(.unavailable("PostgreSQL is unreachable"))
        }
      }
      guard connected, let s = store else {
        for (ticket, _) in work.submits {
          out.append(.submitted(ticket: ticket, .failure(ClusterError(.connect, "PostgreSQL is unreachable"))))
        }
        failRequests(work, ClusterError(.connect, "PostgreSQL is unreachable"), into: &out)
        post(out)
        if work.stopping { return }
        continue
      }
      do throws(ClusterError) {
        // A fenced node renews nothing: its lease must lapse, so that its claims are rescued.
        if !lease.isFenced && now - lastRenewTry >= leaseMs / 3 {
          lastRenewTry = now
          if let r = try s.renewLease(leaseS: settings.leaseS, running: work.running.count) {
            lease.renewed(at: now)
            if r.queuePaused != queuePaused {
              queuePaused = r.queuePaused
              out.append(.queuePaused(r.queuePaused, by: r.queueChangedBy))
            }
            groups.note(r.groups, into: &out)
          } else if lease.fence() {
            out.append(.fenced("this node's lease lapsed and another node fenced it"))
          }
        }
        if lease.isFenced && Clock.monotonicMs() - lease.lastRenewedMs > leaseMs {
          // Terminal states kept meanwhile first, under the claims they end: the join fences
          // those claims, and a rescue by any node then requeued the tasks and refused them.
          try deliver(&pendingCompletions, s, into: &out)
          // Join again under a new epoch: every earlier claim of this node is fenced.
          let joining = Clock.monotonicMs()
          do throws(ClusterError) {
            try s.join(leaseS: settings.leaseS, host: host, pid: pid, workers: workers, budgetTotal: budgetTotal)
            lease.joined(at: joining)
            epochNow.store(s.epoch, ordering: .releasing)
            out.append(.joined(epoch: s.epoch))
          } catch {
            // Refused while the lease has not lapsed in the database's time (a renewal that
            // went through late): the next round tries again.
            guard case .conflict = error.kind else { throw error }
          }
        }
        try forgetInboxFiles(s)
        for (ticket, tasks) in work.submits {
          do throws(ClusterError) {
            out.append(.submitted(ticket: ticket, .success(try s.submit(tasks, maxQueue: work.maxQueue, inbox: work.submitInbox[ticket]))))
          } catch {
            out.append(.submitted(ticket: ticket, .failure(failure(error, on: s))))
          }
        }
        work.submits = []
        // Answer submitters now, not after the rest of this round.
        post(out)
        out = []
        try deliver(runs: &pendingRuns, except: Set(pendingCompletions.map(\.id)), s)
        try deliver(&pendingCompletions, s, into: &out)
        if !pendingCancels.isEmpty {
          try s.requestCancel(pendingCancels)
          pendingCancels = []
        }
        // A wake-up may be a resume: follow it before claiming, so that what this node claims
        // now is not held by a pause it has not heard the end of yet. A groups hint may be a
        // pause (of the queue too): followed at once, not at the next renewal.
        if (hinted && queuePaused == true) || groupsHinted, let q = try s.queuePause(), q.paused != queuePaused {
          queuePaused = q.paused
          out.append(.queuePaused(q.paused, by: q.by))
        }
        // Groups changed: read them before claiming, so a limit set a moment ago holds (and
        // claims are serialized while one exists). Also at the start, before the first claim.
        if groupsHinted || groups.listed == nil { groups.note(try s.listedGroups(), into: &out) }
        if !lease.isFenced && work.wantClaims > 0 && (hinted || kicked || now - lastClaim >= 1000) {
          lastClaim = now
          let got = try s.claim(limit: work.wantClaims, held: groups.listed ?? [], startable: work.startable)
          busy = got.count == work.wantClaims
          if !got.isEmpty {
            inbox.withLock {
              $0.wantClaims = max(0, $0.wantClaims - got.count)
              $0.startable = max(0, $0.startable - got.count)
            }
            out.append(.claimed(got))
          }
        }
        if now - lastRescue >= 1000 && now >= rescueAfter {
          lastRescue = now
          if let r = try s.rescue(), !r.fenced.isEmpty || r.requeued + r.cancelled > 0 {
            out.append(.rescued(fenced: r.fenced, requeued: r.requeued, cancelled: r.cancelled))
          }
        }
        if now - lastSettle >= 1000 {
          lastSettle = now
          if let r = try s.settle(historyS: settings.historyS), r.failed + r.cancelled + r.readied + r.trimmed > 0 {
            out.append(.settled(failed: r.failed, cancelled: r.cancelled, readied: r.readied, trimmed: r.trimmed))
          }
        }
        try answerRequests(&work, s, into: &out)
        // A pause or resume asked on this node is what it now knows of the flag, so that a later
        // read that differs is reported: a pause here undone by another node before this node's
        // next renewal left this node's scheduler paused for good.
        for case .queuePauseSet(_, let paused, .success) in out { queuePaused = paused }
        for limits in work.seeds { try s.seedGroups(limits) }
        if !work.pauses.isEmpty || !work.groupChanges.isEmpty || !work.seeds.isEmpty {
          groups.note(try s.listedGroups(), into: &out)
        }
        try groups.readLoad(s, now: now, into: &out)
        if !watches.isEmpty && (now - lastWatch >= 100 || !work.watches.isEmpty) {
          lastWatch = now
          var still: [(UInt64, [Int])] = []
          for (ticket, ids) in watches {
            let o = try s.outcomes(ids)
            if o.allSatisfy({ $0.state != nil || $0.unknown }) {
              out.append(.finished(ticket: ticket, o))
            } else {
              still.append((ticket, ids))
            }
          }
          watches = still
        }
        if (cancelHinted || now - lastCancelCheck >= 1000) && !work.running.isEmpty {
          lastCancelCheck = now
          let ids = try s.cancelRequested(among: work.running)
          if !ids.isEmpty { out.append(.cancelRequested(ids)) }
        }
        // Last, and on its own: the web view's snapshot never holds up or fails the loop's work.
        try? refreshSnapshot(s, now: now, last: &lastSnapshot, loads: groups.load)
        try? publishWeb(s, epoch: s.epoch)
        if work.stopping {
          try? s.leave()
          post(out)
          return
        }
      } catch {
        for (ticket, _) in work.submits { out.append(.submitted(ticket: ticket, .failure(failure(error, on: s)))) }
        failRequests(work, error, into: &out)
        if !s.db.isConnected {
          store = nil
          if !down {
            down = true
            out.append(.unavailable("\(error)"))
          }
        }
      }
      post(out)
    }
  }
}
