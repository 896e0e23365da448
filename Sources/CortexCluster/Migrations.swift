/// The cluster schema, versioned. Each version is applied in its own transaction, under an
/// advisory lock so two nodes migrating at once do not race, and recorded in `cortex_schema`.
/// Applying is idempotent: versions already recorded are skipped. A database whose schema is
/// newer than this binary knows is refused, never downgraded.
public enum Migrations {
  /// (version, statements) in order. Never edit a released version: add the next one.
  static let versions: [(Int, [String])] = [
    (
      1,
      [
        """
        CREATE TABLE cortex_node (
          name text PRIMARY KEY,
          epoch bigint NOT NULL DEFAULT 1,
          state text NOT NULL DEFAULT 'alive' CHECK (state IN ('alive', 'fenced', 'stopped')),
          lease_until timestamptz NOT NULL,
          host text NOT NULL DEFAULT '',
          pid integer NOT NULL DEFAULT 0,
          workers integer NOT NULL DEFAULT 0,
          running integer NOT NULL DEFAULT 0,
          started_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        "CREATE SEQUENCE cortex_task_id_seq",
        """
        CREATE TABLE cortex_task (
          id bigint PRIMARY KEY DEFAULT nextval('cortex_task_id_seq'),
          state text NOT NULL CHECK (state IN ('queued', 'running')),
          priority smallint NOT NULL,
          submitted_at timestamptz NOT NULL DEFAULT now(),
          not_before timestamptz NOT NULL DEFAULT now(),
          spec jsonb NOT NULL,
          token_budget bigint NOT NULL DEFAULT 0,
          timeout_ms bigint,
          max_attempts integer NOT NULL DEFAULT 1,
          attempt integer NOT NULL DEFAULT 0,
          idempotency_key text UNIQUE,
          unmet integer NOT NULL DEFAULT 0,
          node text,
          epoch bigint,
          claimed_at timestamptz,
          cancel_requested boolean NOT NULL DEFAULT false
        )
        """,
        "CREATE INDEX cortex_task_ready ON cortex_task (priority DESC, id) WHERE state = 'queued' AND unmet = 0",
        "CREATE INDEX cortex_task_node ON cortex_task (node) WHERE state = 'running'",
        """
        CREATE TABLE cortex_task_done (
          id bigint PRIMARY KEY,
          state text NOT NULL CHECK (state IN ('succeeded', 'failed', 'cancelled', 'timed_out', 'rejected')),
          reason text,
          exit_code integer,
          node text,
          epoch bigint,
          attempt integer NOT NULL,
          tokens_used bigint NOT NULL DEFAULT 0,
          submitted_at timestamptz NOT NULL,
          ended_at timestamptz NOT NULL DEFAULT now(),
          spec jsonb NOT NULL
        )
        """,
        "CREATE INDEX cortex_task_done_ended ON cortex_task_done (ended_at)",
        "CREATE TABLE cortex_dep (task bigint NOT NULL, depends_on bigint NOT NULL, PRIMARY KEY (depends_on, task))",
        "CREATE TABLE cortex_secret (task bigint PRIMARY KEY, secrets jsonb NOT NULL)",
        """
        CREATE TABLE cortex_budget (
          id integer PRIMARY KEY CHECK (id = 1),
          total bigint NOT NULL,
          reserved bigint NOT NULL DEFAULT 0,
          used bigint NOT NULL DEFAULT 0,
          CHECK (reserved >= 0 AND used >= 0 AND reserved + used <= total)
        )
        """,
      ]
    ),
    (
      2,
      [
        // The hot table is all churn (every task is inserted, updated and deleted): vacuum it by
        // row count, not by a fraction of a table that is always small, and leave room on each
        // page for updates that stay on the page (HOT). The budget and node rows are updated at
        // every claim and renewal: the same.
        """
        ALTER TABLE cortex_task SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0,
          autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_insert_scale_factor = 0,
          autovacuum_vacuum_insert_threshold = 5000, autovacuum_vacuum_cost_delay = 0)
        """,
        """
        ALTER TABLE cortex_budget SET (fillfactor = 10, autovacuum_vacuum_scale_factor = 0,
          autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0)
        """,
        """
        ALTER TABLE cortex_node SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0,
          autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0)
        """,
        """
        ALTER TABLE cortex_secret SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000)
        """,
        "ALTER TABLE cortex_dep SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000)",
        "ALTER TABLE cortex_task_done SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0)",
        // Dependencies: the leader's sweep reads waiting tasks and each task's own edges.
        "CREATE INDEX cortex_task_waiting ON cortex_task (id) WHERE unmet > 0",
        "CREATE INDEX cortex_dep_task ON cortex_dep (task)",
        // Idempotency keys of finished tasks, for a repeated submit's answer.
        """
        CREATE INDEX cortex_task_done_key ON cortex_task_done ((spec->>'idempotency_key'))
          WHERE spec ? 'idempotency_key'
        """,
      ]
    ),
    (
      3,
      [
        // Most tasks carry no idempotency key, and a plain UNIQUE index holds an entry for every
        // row version (NULLs too): each insert and each claim (an update that cannot stay HOT,
        // `state` being in the partial indexes' predicates) paid an index insertion for nothing.
        "ALTER TABLE cortex_task DROP CONSTRAINT cortex_task_idempotency_key_key",
        "CREATE UNIQUE INDEX cortex_task_key ON cortex_task (idempotency_key) WHERE idempotency_key IS NOT NULL",
      ]
    ),
    (
      4,
      [
        // Each node's web view publishes where its peers can read it (docs/web.md, "Cluster
        // mode"): the address and a read-only token that only other nodes' web views use. The
        // database is the cluster's trusted shared state; no page or API answer shows the token.
        """
        ALTER TABLE cortex_node ADD COLUMN web_url text NOT NULL DEFAULT '',
          ADD COLUMN web_peer_token text NOT NULL DEFAULT ''
        """
      ]
    ),
    (
      5,
      [
        // The cluster's queue can be paused from any node (`cortex pause`): no node claims a
        // task while it is; running ones go on. One row.
        """
        CREATE TABLE cortex_queue (
          id integer PRIMARY KEY CHECK (id = 1),
          paused boolean NOT NULL DEFAULT false,
          changed_at timestamptz NOT NULL DEFAULT now(),
          changed_by text NOT NULL DEFAULT ''
        )
        """,
        "INSERT INTO cortex_queue (id) VALUES (1)",
      ]
    ),
    (
      6,
      [
        // Groups across the cluster (docs/fleet.md): each task's group, resolved by the node that
        // took the submit; a group paused or limited (`parallel`) from any node holds for every
        // node's claims. `grp` is not indexed: a claim filters it only for the few groups listed
        // in cortex_group, and an index would cost every insert and claim.
        "ALTER TABLE cortex_task ADD COLUMN grp text NOT NULL DEFAULT 'default'",
        """
        CREATE TABLE cortex_group (
          name text PRIMARY KEY,
          paused boolean NOT NULL DEFAULT false,
          parallel integer NOT NULL DEFAULT 0 CHECK (parallel >= 0),
          changed_at timestamptz NOT NULL DEFAULT now(),
          changed_by text NOT NULL DEFAULT ''
        )
        """,
      ]
    ),
    (
      7,
      [
        // Inbox files a node submitted and has not moved to `inbox/accepted/` yet (docs/design.md,
        // "Inbox files across a crash"): written in the submit's transaction, deleted by the node
        // once the file has moved (or at its next start). A node that starts again finds here the
        // files it must move instead of submitting them again. A few rows at most per node.
        """
        CREATE TABLE cortex_inbox (
          node text NOT NULL,
          file text NOT NULL,
          crc32c bigint NOT NULL,
          ids bigint[] NOT NULL,
          submitted_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (node, file)
        )
        """
      ]
    ),
    (
      8,
      [
        // A finished task keeps the group the cluster counted it in (its live row's `grp`):
        // `list --group` and `show` took a finished task's group from its spec, which names none
        // when the task's worker type gave it its group. NULL for tasks that ended before.
        "ALTER TABLE cortex_task_done ADD COLUMN grp text"
      ]
    ),
    (
      9,
      [
        // What the node that claimed a task does with it (docs/cluster.md, "Starts and local
        // retries"): when its current run started (NULL: claimed and not started, or waiting for
        // a local retry) and which attempt that run is. A node retries a failed task itself
        // (max_attempts), under the one claim: the claim's `attempt` said 1 while the node ran
        // 3, and `cortex cluster status` learnt that a task had started only from the node's
        // next renewal. A finished record keeps when its last run started.
        "ALTER TABLE cortex_task ADD COLUMN started_at timestamptz, ADD COLUMN run_attempt integer",
        "ALTER TABLE cortex_task_done ADD COLUMN started_at timestamptz",
      ]
    ),
  ]

  /// The newest version this binary knows.
  public static var latest: Int { versions.last!.0 }

  /// An arbitrary constant for `pg_advisory_xact_lock`: "cortex" in ASCII.
  static let lockKey = "109111114116101120"

  /// The version recorded in the database (0 when it has no Cortex schema).
  public static func current(_ db: PGConnection) throws(ClusterError) -> Int {
    let exists = try db.execute("SELECT to_regclass('cortex_schema') IS NOT NULL AS present")
    guard exists[0, "present"] == "t" else { return 0 }
    let v = try db.execute("SELECT coalesce(max(version), 0) AS v FROM cortex_schema")
    return Int(v[0, "v"] ?? "0") ?? 0
  }

  /// Applies every missing version; returns those it applied. Refuses a newer schema.
  @discardableResult
  public static func migrate(_ db: PGConnection) throws(ClusterError) -> [Int] {
    try db.execute(
      "CREATE TABLE IF NOT EXISTS cortex_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
    var applied: [Int] = []
    for (version, statements) in versions {
      let did = try db.transaction { () throws(ClusterError) -> Bool in
        try db.execute("SELECT pg_advisory_xact_lock($1::bigint)", [lockKey])
        let newest = try current(db)
        if newest > latest { throw newer(newest) }
        if try !db.execute("SELECT 1 FROM cortex_schema WHERE version = $1", [String(version)]).values.isEmpty {
          return false
        }
        for sql in statements { try db.execute(sql) }
        try db.execute("INSERT INTO cortex_schema (version) VALUES ($1)", [String(version)])
        return true
      }
      if did { applied.append(version) }
    }
    return applied
  }

  /// Nil when the database has exactly the schema this binary knows, else what is wrong.
  /// `migrate`: the command that creates the schema, as the caller can give it whole (with the
  /// `--dir` or `--postgres` that finds this database from anywhere).
  public static func check(_ db: PGConnection, migrate: String = "cortex cluster migrate") throws(ClusterError) {
    let v = try current(db)
    if v > latest { throw newer(v) }
    if v < latest {
      let has = v == 0 ? "has no Cortex schema yet" : "has Cortex schema version \(v)"
      throw ClusterError(.schema, "the database \(has) and this cortex needs version \(latest); run: \(migrate)")
    }
  }

  static func newer(_ v: Int) -> ClusterError {
    ClusterError(
      .schema,
      "the database has Cortex schema version \(v), newer than this cortex knows (\(latest)); upgrade cortex on this host")
  }
}
