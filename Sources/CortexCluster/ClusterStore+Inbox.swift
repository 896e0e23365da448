/// Inbox files in cluster mode, submitted exactly once (schema 7, `cortex_inbox`). A node moves
/// an inbox file to `accepted/` only after its submit committed; a node killed between the two
/// found the file still in `inbox/` and submitted it again. So the submit records the file (its
/// name, the CRC32C of its bytes, the ids it became) in its own transaction, the node deletes the
/// record once the file has moved, and a start moves each file it still has a record of, with
/// the same bytes, instead of submitting it again (docs/design.md, "Inbox files across a crash").
extension ClusterStore {
  /// An inbox file a submit comes from: its name in `inbox/` and the CRC32C of its bytes.
  public struct InboxFile: Sendable, Equatable {
    public var name: String
    public var crc32c: UInt32
    public init(name: String, crc32c: UInt32) {
      self.name = name
      self.crc32c = crc32c
    }
  }

  /// An inbox file this node submitted and had not moved (as a start reads them).
  public struct InboxRecord: Sendable, Equatable {
    public var file: InboxFile
    /// The tasks it was submitted as, in order.
    public var ids: [Int]
    public init(file: InboxFile, ids: [Int]) {
      self.file = file
      self.ids = ids
    }
  }

  /// Inside the submit's transaction, before anything is added: the ids `file` became if this
  /// node submitted it (with these bytes) and has not moved it yet — a submit whose answer was
  /// lost (the connection dropped at its COMMIT) and that the daemon tries again.
  func submittedInbox(_ file: InboxFile) throws(ClusterError) -> [Int]? {
    let r = try db.execute(ClusterSQL.submittedInbox, [node, file.name, String(file.crc32c)])
    return r.count > 0 ? Self.ids(r[0, "ids"]) : nil
  }

  /// Inside the submit's transaction: `file` became the tasks `ids`.
  func recordInbox(_ file: InboxFile, ids: [Int]) throws(ClusterError) {
    try db.execute(ClusterSQL.recordInbox, [node, file.name, String(file.crc32c), Self.array(ids)])
  }

  /// The inbox files this node submitted and had not moved when it stopped.
  public func pendingInbox() throws(ClusterError) -> [InboxRecord] {
    let r = try db.execute(ClusterSQL.pendingInbox, [node])
    return (0..<r.count).compactMap { i in
      guard let name = r[i, "file"], let crc = r[i, "crc32c"].flatMap({ UInt32($0) }) else { return nil }
      return InboxRecord(file: InboxFile(name: name, crc32c: crc), ids: Self.ids(r[i, "ids"]))
    }
  }

  /// The file submitted as `ids` has moved (or a start settled it): its record goes.
  public func forgetInbox(_ name: String, ids: [Int]) throws(ClusterError) {
    try db.execute(ClusterSQL.forgetInbox, [node, name, Self.array(ids)])
  }

  /// Ids from a PostgreSQL array's text (`{1,2}`).
  static func ids(_ text: String?) -> [Int] {
    (text ?? "").split { $0 == "{" || $0 == "}" || $0 == "," }.compactMap { Int($0) }
  }

  /// A PostgreSQL array literal of ids.
  static func array(_ ids: [Int]) -> String { "{" + ids.map(String.init).joined(separator: ",") + "}" }
}
