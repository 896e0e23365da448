/// The link's side of inbox files in cluster mode (`ClusterStore+Inbox`): a submit of an inbox
/// file carries it (`submit(…, inbox:)`), and once the daemon has moved the file to `accepted/`
/// its record is deleted — kept through an outage and written when PostgreSQL is back, so a
/// record outlives its file only until this node's next start settles it.
extension ClusterLink {
  /// The inbox file submitted as `ids` has moved to `accepted/`: its record goes.
  public func inboxSettled(_ name: String, ids: [Int]) { request { $0.inboxForgets.append((name, ids)) } }

  /// Deletes the records of moved files, before the round's submits (a file dropped again
  /// under the same name keeps the record its own submit writes). What fails stays for the
  /// next round.
  func forgetInboxFiles(_ s: ClusterStore) throws(ClusterError) {
    let list = inbox.withLock { i in
      defer { i.inboxForgets = [] }
      return i.inboxForgets
    }
    for (n, f) in list.enumerated() {
      do throws(ClusterError) { try s.forgetInbox(f.name, ids: f.ids) } catch {
        // A statement that failed on a live connection is not tried again (this node's next
        // start settles the record); one that met an outage is.
        if s.db.isConnected { continue }
        inbox.withLock { $0.inboxForgets.insert(contentsOf: list[n...], at: 0) }
        throw error
      }
    }
  }
}
