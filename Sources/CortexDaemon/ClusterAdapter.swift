import CortexCluster
import CortexCore
import Posix

/// The daemon's boundary with the shared queue (cluster mode, SPEC §11, docs/cluster.md). It
/// owns the `ClusterLink` (whose thread owns the database connection) and remembers, for each
/// task this node claimed, the claim (attempt, epoch) that its terminal state must carry. The
/// loop calls it at four points — a submit, a logged event, its wake-up fd, and once per
/// iteration — and it turns what the link reports into ordinary scheduler inputs.
final class ClusterAdapter {
  let link: ClusterLink
  let node: String
  /// Claims of tasks running (or queued) here: what their terminal state is conditional on.
  var claims: [Int: (attempt: Int, epoch: Int64)] = [:] { didSet { claimsChanged = true } }
  /// Whether `claims` changed since `tick` last told the link what runs here.
  var claimsChanged = false
  /// Submits waiting for the database's commit: ticket → (client, specs as sent).
  var pendingSubmits: [UInt64: ClientID] = [:]
  var nextTicket: UInt64 = 1
  /// `wait` and `cancel` requests answered from the cluster's record: ticket → (client, cancel?).
  var pendingWatches: [UInt64: (client: ClientID, cancel: Bool, ids: [Int])] = [:]
  var lastWanted = -1
  var lastStartable = -1
  var lastWantSentMs: Int64 = 0
  var lastRunning: [Int] = []
  /// Since when (wall ms) the link reports PostgreSQL unreachable; nil while it answers.
  var unreachableSinceMs: Int64?
  var available: Bool { unreachableSinceMs == nil }
  /// The internal client id for cancels the cluster asked for (answers go nowhere).
  static let internalClient: ClientID = 1 << 38

  /// Terminal states not yet confirmed by the cluster, kept on disk during an outage.
  var outbox: ClusterOutbox

  /// Inbox files this node submitted and had not moved when it stopped (the start moves them,
  /// `Daemon.settleClusterInbox`); and the inbox file of each submit waiting for its commit.
  var unmovedInbox: [ClusterStore.InboxRecord] = []
  var pendingInbox: [UInt64: ClusterStore.InboxFile] = [:]

  /// `groupLimits`: the config's `parallel` per group, which seeds the cluster's for groups it
  /// does not list yet. `previousPid`: this directory's previous daemon (`ClusterLink.start`).
  /// `directory`: the node's directory, for the `cortex cluster migrate --dir` a database
  /// without the schema is told to run.
  init(
    settings: ClusterSettings, workers: Int, budgetTotal: Int, outboxPath: String, groupLimits: [String: Int] = [:],
    previousPid: Int32? = nil, directory: String? = nil
  ) throws(StartupError) {
    node = settings.node ?? Host.name
    outbox = ClusterOutbox(path: outboxPath)
    do throws(PosixError) {
      link = try ClusterLink(
        settings: settings, node: node, host: Host.name, pid: Processes.currentID, workers: workers, budgetTotal: budgetTotal)
    } catch {
      throw StartupError("cannot set up the cluster link: \(error)")
    }
    do throws(ClusterError) {
      unmovedInbox = try link.start(
        replay: ClusterOutbox.load(outboxPath), groupLimits: groupLimits, previousPid: previousPid,
        migrate: "cortex cluster migrate" + (directory.map { " --dir " + Scheduler.shellQuote($0) } ?? ""))
    } catch {
      let fix =
        switch error.misconfigured {
        case .login?: "; check the user, password and database in cluster.postgres in config.json"
        case .connectionString?: "; check cluster.postgres in config.json"
        case nil: ""
        }
      throw StartupError("cannot join the cluster: \(error)\(fix)")
    }
    // Delivered (or refused by the fence) before joining: nothing is left to keep.
    try? FileSystem.remove(outboxPath)
  }

  /// A number for one request to the link; its answer comes back with it.
  func newTicket() -> UInt64 {
    defer { nextTicket += 1 }
    return nextTicket
  }

  /// A submit goes to the database; the client hears back after its commit, with `answerFields`
  /// added (a `retry`'s account of what it retried). `groups`: each task's group, as this node
  /// resolves it. `inbox`: the inbox file the batch comes from (recorded with it in the database).
  func submit(
    _ client: ClientID, _ ready: [Scheduler.Adopted], groups: [String], maxQueue: Int, answerFields: [(String, JSON)] = [],
    inbox: ClusterStore.InboxFile? = nil
  ) {
    let ticket = newTicket()
    pendingSubmits[ticket] = client
    if !answerFields.isEmpty { pendingAnswerFields[ticket] = answerFields }
    if let inbox { pendingInbox[ticket] = inbox }
    link.submit(
      ticket: ticket,
      zip(ready, groups).map { a, group in
        let (redacted, secrets) = a.spec.redacted()
        return ClusterStore.NewTask(
          priority: a.spec.priority.rawValue, spec: redacted.json(), tokenBudget: a.budget, timeoutMs: a.timeoutMs,
          maxAttempts: a.maxAttempts, idempotencyKey: a.spec.idempotencyKey, secrets: secrets.isEmpty ? nil : secrets.json(),
          dependsOn: a.spec.dependsOn, dependsOnBatch: a.spec.dependsOnBatch, retryOf: a.spec.retryOf,
          group: group)
      }, maxQueue: maxQueue, inbox: inbox)
  }

  /// Submits that are a `retry`: ticket → what their answer adds.
  var pendingAnswerFields: [UInt64: [(String, JSON)]] = [:]
  /// `retry` requests waiting for the specs from the cluster's history: ticket → client.
  var pendingRetries: [UInt64: ClientID] = [:]

  /// `retry` of tasks that may have run on any node: their specs come from the database.
  func retry(_ client: ClientID, _ ids: [Int], allFailed: Bool) {
    let ticket = newTicket()
    pendingRetries[ticket] = client
    link.retrySources(ticket: ticket, ids: ids, allFailed: allFailed)
  }

  /// `pause` / `resume` requests waiting for the database: ticket → client.
  var pendingPauses: [UInt64: ClientID] = [:]

  /// `pause` or `resume` of the cluster's queue (every node stops or starts claiming).
  func setQueuePaused(_ client: ClientID, _ paused: Bool) {
    let ticket = newTicket()
    pendingPauses[ticket] = client
    link.setQueuePaused(ticket: ticket, paused)
  }

  /// The inbox file submitted as `ids` has moved to `accepted/`: the database's record of it goes.
  func inboxSettled(_ name: String, ids: [Int]) { link.inboxSettled(name, ids: ids) }

  /// The groups the cluster lists, as the link last reported them (nil: not yet).
  var listedGroups: [ClusterGroup]?

  /// What the groups the cluster holds back have running and queued in the whole cluster, as
  /// the link last read it (nil: not yet); `groups.json` carries it for `cortex status`.
  var groupLoad: [ClusterStatus.GroupLoad]?

  /// `pause GROUP`, `resume GROUP` and `group set` waiting for the database: ticket → the client
  /// and the request, which this node's scheduler then applies (and answers).
  var pendingGroupSets: [UInt64: (client: ClientID, command: FleetCommand)] = [:]

  /// A group paused, resumed or limited for every node.
  func setGroup(_ client: ClientID, _ group: String, _ change: GroupChange, command: FleetCommand) {
    let ticket = newTicket()
    pendingGroupSets[ticket] = (client, command)
    link.setGroup(ticket: ticket, group, change)
  }

  /// `edit` requests waiting for the database: ticket → client and the fields changed.
  var pendingEdits: [UInt64: (client: ClientID, fields: [String])] = [:]

  /// `edit` of a queued task wherever it was submitted: the change is applied to the database's
  /// copy of its spec (secret values restored first, redacted again after), as on a single host.
  func edit(_ client: ClientID, _ id: Int, _ change: TaskSpec, fields: [String]) {
    let ticket = newTicket()
    pendingEdits[ticket] = (client, fields)
    link.edit(ticket: ticket, id) { text, secretsText in
      Self.applyEdit(change, fields: fields, to: text, secrets: secretsText)
    }
  }

  /// The pure part of a cluster `edit`: the stored spec and secret values in, the new ones out.
  static func applyEdit(
    _ change: TaskSpec, fields: [String], to text: String, secrets secretsText: String?
  ) -> Result<
    ClusterStore.Edited, ClusterError
  > {
    guard let v = try? JSON.parse(Array(text.utf8)), var spec = try? TaskSpec.decode(v) else {
      return .failure(ClusterError(.invalid(field: "spec", index: nil), "the task's spec in the cluster cannot be read"))
    }
    if let secretsText, let sv = try? JSON.parse(Array(secretsText.utf8)), let secrets = SpecSecrets.decode(sv) {
      spec.restore(secrets)
    }
    let edited: TaskSpec
    do throws(SpecError) {
      edited = try spec.edited(with: change, fields: fields)
    } catch {
      return .failure(ClusterError(.invalid(field: error.field, index: nil), error.message))
    }
    let (redacted, secrets) = edited.redacted()
    let after = redacted.json()
    return .success(
      ClusterStore.Edited(
        spec: after.encoded(), priority: edited.priority.rawValue, timeoutMs: edited.timeoutS.map { Numbers.ms(fromSeconds: $0) },
        secrets: secrets.isEmpty ? nil : secrets.json().encoded(),
        before: .object(fields.map { ($0, v[$0] ?? .null) }), after: .object(fields.map { ($0, after[$0] ?? .null) }),
        group: fields.contains("group") ? edited.group ?? FleetNames.defaultGroup : nil))
  }

  /// `show` requests answered from the cluster's record: ticket → client and the task asked for.
  var pendingShows: [UInt64: (client: ClientID, id: Int)] = [:]

  /// `show` of a task this node does not hold.
  func describe(_ client: ClientID, _ id: Int) {
    let ticket = newTicket()
    pendingShows[ticket] = (client, id)
    link.describe(ticket: ticket, id)
  }

  /// `list` requests answered from the cluster's tables: ticket → client.
  var pendingLists: [UInt64: ClientID] = [:]

  /// `list` across the cluster: at most `limit` rows (10,000 when not given: the history table
  /// can hold millions).
  func list(_ client: ClientID, state: String?, type: String?, limit: Int) {
    let ticket = newTicket()
    pendingLists[ticket] = client
    link.list(ticket: ticket, state: state, type: type, limit: limit > 0 ? limit : 10_000)
  }

  /// `wait` or `cancel` of any task in the cluster: answered once every one has ended.
  func watch(_ client: ClientID, _ ids: [Int], cancel: Bool) {
    let ticket = newTicket()
    pendingWatches[ticket] = (client, cancel, ids)
    if cancel { link.cancel(ids) }
    link.watch(ticket: ticket, ids)
  }

  /// The answer to a watch, in the shape the single-host daemon gives.
  static func answer(_ outcomes: [ClusterStore.Outcome], cancel: Bool) -> JSON {
    if cancel {
      return .object([
        ("ok", .bool(true)),
        (
          "results",
          .object(
            outcomes.map { o in
              let what = o.unknown ? "unknown task" : o.state == .cancelled ? "cancelled" : "already \(o.state?.rawValue ?? "ended")"
              return (TaskID.format(o.id), .string(what))
            })
        ),
      ])
    }
    if let bad = outcomes.first(where: \.unknown) {
      return Scheduler.invalid(SpecError("id", "unknown task \(TaskID.format(bad.id))"), index: nil, of: 1)
    }
    return .object([
      ("ok", .bool(true)),
      (
        "tasks",
        .array(
          outcomes.map { o in
            .object([
              ("id", .string(TaskID.format(o.id))), ("state", .string(o.state?.rawValue ?? "unknown")),
              ("exit_code", o.exitCode.map { .int(Int64($0)) } ?? .null), ("signal", .null),
              ("reason", o.reason.map { .string($0) } ?? .null), ("node", o.node.map { .string($0) } ?? .null),
            ])
          })
      ),
    ])
  }

  /// A terminal event for a task claimed here becomes the cluster's terminal state (fenced by
  /// its claim, carrying the attempt its last run was); the claim is forgotten. A start, and a
  /// run that ended for a local retry, become a note of the run on the task's row (`runs`,
  /// handed to the link once per loop iteration), so that every node's `show`, `list` and
  /// `cortex cluster status` see it as it happens (docs/cluster.md, "Starts and local retries").
  func observe(_ e: Event) {
    guard let n = e.task, let claim = claims[n] else { return }
    switch e.type {
    case "task.started":
      runs[n] = ClusterLink.Run(id: n, attempt: claim.attempt, epoch: claim.epoch, ran: e.attempt ?? claim.attempt, running: true)
      lastRun[n] = e.attempt
    case "task.retrying":
      runs[n] = ClusterLink.Run(
        id: n, attempt: claim.attempt, epoch: claim.epoch, ran: lastRun[n] ?? claim.attempt, running: false)
    default:
      guard TaskState.terminalEventTypes.contains(e.type), let state = TaskState(rawValue: String(e.type.dropFirst(5))) else {
        return
      }
      claims[n] = nil
      runs[n] = nil
      let ran = e.attempt ?? lastRun[n]
      lastRun[n] = nil
      let exit = e.fields.first { $0.0 == "exit_code" }?.1.int.map { Int32(truncatingIfNeeded: $0) }
      let tokens = Int(e.fields.first { $0.0 == "tokens_used" }?.1.int ?? 0)
      let c = ClusterLink.Completion(
        id: n, attempt: claim.attempt, epoch: claim.epoch, state: state, reason: e.reason, exitCode: exit, tokensUsed: tokens,
        ran: ran)
      link.complete(c)
      outbox.sent(c)
    }
  }

  /// Runs of claimed tasks noted since the last iteration (`observe`), by task.
  var runs: [Int: ClusterLink.Run] = [:]
  /// The attempt of each claimed task's latest run here.
  var lastRun: [Int: Int] = [:]

  /// Once per loop iteration: how many tasks this node wants, and what runs here.
  /// `startable`: how many of them it could start at once (see `ClusterLink.wantClaims`).
  func tick(spare: Int, startable: Int, now: Int64) {
    outbox.flush()
    if !runs.isEmpty {
      link.ran(Array(runs.values))
      runs = [:]
    }
    let want = available ? spare : 0
    // The link lowers its copy as it claims (`claimed` resets `lastWanted`); also once a second.
    if want != lastWanted || startable != lastStartable || (want > 0 && now - lastWantSentMs >= 1000) {
      lastWanted = want
      lastStartable = startable
      lastWantSentMs = now
      link.wantClaims(want, startable: startable)
    }
    // Sorted and compared only after a change, not at every loop iteration.
    guard claimsChanged else { return }
    claimsChanged = false
    let running = claims.keys.sorted()
    if running != lastRunning {
      lastRunning = running
      link.running(running)
    }
  }
}

public enum Host {
  /// This machine's name (the default node name), from /proc.
  public static var name: String {
    let raw = ((try? FileSystem.read("/proc/sys/kernel/hostname")) ?? nil) ?? Array("localhost".utf8)
    let s = String(decoding: raw, as: UTF8.self).filter { !$0.isWhitespace }
    return s.isEmpty ? "localhost" : s
  }

  /// Which loopback this process is on: the kernel's boot id and the inode of its network
  /// namespace. Two processes reach each other's 127.0.0.1 exactly when these agree; host names
  /// do not tell (hosts cloned from one image, or containers, often share one). "" when /proc
  /// does not say.
  public static var network: String {
    let boot = String(decoding: ((try? FileSystem.read("/proc/sys/kernel/random/boot_id")) ?? nil) ?? [], as: UTF8.self)
      .filter { $0.isHexDigit }
    let namespace = (FileSystem.readLink("/proc/self/ns/net") ?? "").filter { $0.isNumber }
    return boot.isEmpty || namespace.isEmpty ? "" : boot + "." + namespace
  }
}
