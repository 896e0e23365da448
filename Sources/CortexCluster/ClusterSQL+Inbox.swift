/// The statements that keep an inbox file submitted exactly once in cluster mode (schema 7,
/// `cortex_inbox`; docs/design.md, "Inbox files across a crash"). Part of `ClusterSQL`: every
/// statement cluster mode runs is named in `ClusterSQL` and its extensions, nowhere else.
extension ClusterSQL {
  /// In the submit's transaction: node $1 submitted inbox file $2 (bytes of CRC32C $3) as the
  /// tasks $4 (an array of ids). A row left for the same name (its forget not written yet) is
  /// replaced: the file of that name now is this one.
  static let recordInbox = """
    INSERT INTO cortex_inbox (node, file, crc32c, ids) VALUES ($1, $2, $3::bigint, $4::bigint[])
    ON CONFLICT (node, file) DO UPDATE SET crc32c = EXCLUDED.crc32c, ids = EXCLUDED.ids, submitted_at = now()
    """

  /// Whether node $1 already submitted inbox file $2 with these bytes (CRC32C $3) and has not
  /// moved it yet: the ids it became, or no row.
  static let submittedInbox = """
    SELECT ids::text AS ids FROM cortex_inbox WHERE node = $1 AND file = $2 AND crc32c = $3::bigint
    """

  /// At a start: the inbox files node $1 submitted and had not moved when it stopped.
  static let pendingInbox = """
    SELECT file, crc32c, ids::text AS ids FROM cortex_inbox WHERE node = $1 ORDER BY file
    """

  /// The file has moved to `accepted/` (or a start settled it): its record goes. $1 node, $2 file,
  /// $3 the ids it was submitted as (a later submit of the same name keeps its own record).
  static let forgetInbox = """
    DELETE FROM cortex_inbox WHERE node = $1 AND file = $2 AND ids = $3::bigint[]
    """
}
