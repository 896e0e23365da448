/// The link's answers to the daemon's one-off requests (`list`, `retry`, `edit`, `show`): each
/// gets its own answer, a failure included, so that no client waits for a statement that failed.
extension ClusterLink {
  /// Runs the requests in `work` against the database; a failing show, list, retry or edit is
  /// answered with its error and the others still run. Clears what it answered.
  func answerRequests(_ work: inout Inbox, _ s: ClusterStore, into out: inout [Event]) throws(ClusterError) {
    for (ticket, id) in work.describes {
      do throws(ClusterError) {
        out.append(.described(ticket: ticket, .success(try s.describe(id))))
      } catch {
        out.append(.described(ticket: ticket, .failure(failure(error, on: s))))
      }
    }
    work.describes = []
    for l in work.lists {
      do throws(ClusterError) {
        out.append(.listed(ticket: l.ticket, .success(try s.list(state: l.state, type: l.type, limit: l.limit))))
      } catch {
        out.append(.listed(ticket: l.ticket, .failure(error)))
      }
    }
    work.lists = []
    for r in work.retries {
      do throws(ClusterError) {
        out.append(.retrySources(ticket: r.ticket, .success(try s.retrySources(ids: r.ids, allFailed: r.allFailed))))
      } catch {
        out.append(.retrySources(ticket: r.ticket, .failure(error)))
      }
    }
    work.retries = []
    for e in work.edits {
      do throws(ClusterError) {
        out.append(.edited(ticket: e.ticket, id: e.id, .success(try s.edit(e.id, e.change))))
      } catch {
        out.append(.edited(ticket: e.ticket, id: e.id, .failure(error)))
      }
    }
    work.edits = []
    for p in work.pauses {
      do throws(ClusterError) {
        let was = try s.setQueuePaused(p.paused)
        let resumed = p.paused ? [] : try s.resumeAllGroups()
        out.append(.queuePauseSet(ticket: p.ticket, paused: p.paused, .success((was, resumed))))
      } catch {
        out.append(.queuePauseSet(ticket: p.ticket, paused: p.paused, .failure(error)))
      }
    }
    for g in work.groupChanges {
      do throws(ClusterError) {
        switch g.change {
        case .paused(let on): out.append(.groupSet(ticket: g.ticket, group: g.group, g.change, .success(try s.setGroupPaused(g.group, on))))
        case .parallel(let n):
          try s.setGroupParallel(g.group, n)
          out.append(.groupSet(ticket: g.ticket, group: g.group, g.change, .success(false)))
        }
      } catch {
        out.append(.groupSet(ticket: g.ticket, group: g.group, g.change, .failure(error)))
      }
    }
  }

  /// `error` from a statement on `s`, said as a lost connection (`.connect`) when the connection
  /// is gone, whatever the statement's own error was: a submit cut off so may or may not have
  /// committed, and the daemon keeps an inbox file for the next try (`Daemon.clusterEvents`).
  func failure(_ error: ClusterError, on s: ClusterStore) -> ClusterError {
    if s.db.isConnected { return error }
    if case .connect = error.kind { return error }
    return ClusterError(.connect, error.message)
  }

  /// The requests in `work` could not run (the database is unreachable, or the round failed
  /// before them): each is answered with `error`.
  /// A `show` was left out: its client waited with no end while this node was cut off.
  func failRequests(_ work: Inbox, _ error: ClusterError, into out: inout [Event]) {
    for (ticket, _) in work.describes { out.append(.described(ticket: ticket, .failure(error))) }
    for l in work.lists { out.append(.listed(ticket: l.ticket, .failure(error))) }
    for r in work.retries { out.append(.retrySources(ticket: r.ticket, .failure(error))) }
    for e in work.edits { out.append(.edited(ticket: e.ticket, id: e.id, .failure(error))) }
    for p in work.pauses { out.append(.queuePauseSet(ticket: p.ticket, paused: p.paused, .failure(error))) }
    for g in work.groupChanges { out.append(.groupSet(ticket: g.ticket, group: g.group, g.change, .failure(error))) }
  }
}

/// A change to one group, cluster-wide.
public enum GroupChange: Sendable, Equatable {
  case paused(Bool)
  case parallel(Int)
}
