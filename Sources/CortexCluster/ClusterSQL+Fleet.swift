/// The statements of fleet control in cluster mode (docs/fleet.md): `retry`, `pause`/`resume`
/// of the queue and of groups, group limits, `edit`. Part of `ClusterSQL`: every statement
/// cluster mode runs is named in `ClusterSQL` and its extensions, nowhere else.
extension ClusterSQL {
  /// `retry`: the named tasks' specs as the cluster keeps them, with where each stands (finished,
  /// live, or unknown: absent from both). $1 an array of ids.
  static let retrySources = """
    SELECT i.id, d.state AS done_state, d.spec::text AS spec, t.state AS live_state
    FROM unnest($1::bigint[]) AS i(id)
    LEFT JOIN cortex_task_done d ON d.id = i.id
    LEFT JOIN cortex_task t ON t.id = i.id
    """

  /// `pause` / `resume` of the cluster's queue. $1 paused, $2 the node that asks. Returns
  /// whether it was paused before. The old value comes from a locked subquery in FROM: a CTE
  /// read only by RETURNING runs after the UPDATE, and its `FOR UPDATE` then skips the row this
  /// statement changed, so `was` came back NULL (a resume said "nothing was paused" and woke no node).
  static let setQueuePaused = """
    UPDATE cortex_queue q SET paused = $1::bool, changed_at = now(), changed_by = $2
    FROM (SELECT paused FROM cortex_queue WHERE id = 1 FOR UPDATE) old
    WHERE q.id = 1
    RETURNING old.paused AS was
    """

  /// Whether the cluster's queue is paused, and which node paused or resumed it last.
  static let queuePaused = "SELECT paused, changed_by FROM cortex_queue WHERE id = 1"

  /// The groups `cortex_group` lists (those that hold claims back, paused or with a `parallel`
  /// limit, and those that did), as the renewal reads them: a JSON array of
  /// [name, paused, parallel, changed_by]. A few rows: one per group ever paused or limited.
  static let listedGroups = """
    SELECT \(listedGroupsJSON) AS groups FROM cortex_group g
    """

  /// The JSON `listedGroups` and the renewal read, over `cortex_group g`.
  static let listedGroupsJSON =
    "coalesce(jsonb_agg(jsonb_build_array(g.name, g.paused, g.parallel, g.changed_by) ORDER BY g.name), '[]')::text"

  /// The held groups with what they have running and queued, for `cortex cluster status` only
  /// (each count scans the live tasks: `grp` is not indexed, see schema 6).
  static let groupLoad = """
    SELECT g.name, g.paused, g.parallel,
      (SELECT count(*) FROM cortex_task t WHERE t.grp = g.name AND t.state = 'running') AS running,
      (SELECT count(*) FROM cortex_task t WHERE t.grp = g.name AND t.state = 'queued') AS queued
    FROM cortex_group g WHERE g.paused OR g.parallel > 0 ORDER BY g.name
    """

  /// Whether the cluster knows a group: it lists it, or a live task or one in the history is
  /// in it (`cortex pause GROUP`, before pausing, to warn of a name nothing has used). $1 group.
  static let groupNamed = """
    SELECT EXISTS (SELECT 1 FROM cortex_group WHERE name = $1)
      OR EXISTS (SELECT 1 FROM cortex_task WHERE grp = $1)
      OR EXISTS (SELECT 1 FROM cortex_task_done WHERE spec->>'group' = $1) AS named
    """

  /// `pause GROUP` / `resume GROUP` from any node. $1 group, $2 paused, $3 the node that asks.
  /// Returns whether it was paused before (false for a group not listed yet).
  static let setGroupPaused = """
    INSERT INTO cortex_group AS g (name, paused, changed_by) VALUES ($1, $2::bool, $3)
    ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, changed_at = now(), changed_by = excluded.changed_by
    RETURNING (SELECT o.paused FROM cortex_group o WHERE o.name = $1) AS was
    """

  /// `resume` without a group also resumes every paused group. Returns their names.
  static let resumeAllGroups = """
    UPDATE cortex_group SET paused = false, changed_at = now(), changed_by = $1 WHERE paused RETURNING name
    """

  /// `group set NAME --parallel N` from any node. $1 group, $2 parallel (0: no limit), $3 node.
  static let setGroupParallel = """
    INSERT INTO cortex_group AS g (name, parallel, changed_by) VALUES ($1, $2::int, $3)
    ON CONFLICT (name) DO UPDATE SET parallel = excluded.parallel, changed_at = now(), changed_by = excluded.changed_by
    """

  /// A joining node's configured `parallel` limits, for groups the cluster does not list yet
  /// (the first node's config seeds them; `cortex group set` changes them for every node).
  /// $1 a JSON object name → parallel, $2 node.
  static let seedGroups = """
    INSERT INTO cortex_group (name, parallel, changed_by)
    SELECT key, value::int, $2 FROM jsonb_each_text($1::jsonb) WHERE value::int > 0
    ON CONFLICT (name) DO NOTHING
    """

  /// `edit`: a live task's state, spec and secret values, locked until the edit's transaction
  /// ends (a claim waits, or skips it). No row: the task is not live. $1 id.
  static let editSource = """
    SELECT t.state, t.spec::text AS spec, (SELECT s.secrets::text FROM cortex_secret s WHERE s.task = t.id) AS secrets
    FROM cortex_task t WHERE t.id = $1::bigint FOR UPDATE
    """

  /// `edit`: the new spec (redacted), priority and timeout of a task still queued. $1 id, $2 spec,
  /// $3 priority, $4 timeout ms (NULL: none).
  static let updateQueuedTask = """
    UPDATE cortex_task SET spec = $2::jsonb, priority = $3::smallint, timeout_ms = $4::bigint, grp = coalesce($5, grp)
    WHERE id = $1::bigint AND state = 'queued'
    """

  /// `edit`: the task's secret values after the edit. $1 id, $2 the values (JSON).
  static let replaceSecrets = """
    INSERT INTO cortex_secret (task, secrets) VALUES ($1::bigint, $2::jsonb)
    ON CONFLICT (task) DO UPDATE SET secrets = excluded.secrets
    """

  /// `edit`: the task has no secret values any more. $1 id.
  static let deleteSecrets = "DELETE FROM cortex_secret WHERE task = $1::bigint"

  /// `retry --all-failed`: the failed and timed-out tasks of the history, oldest first.
  static let failedTasks = """
    SELECT id, state AS done_state, spec::text AS spec, NULL::text AS live_state
    FROM cortex_task_done WHERE state IN ('failed', 'timed_out') ORDER BY id
    """

  /// The tasks some task (live or finished) retries: every `retry_of`, as written in the specs.
  static let retriedTasks = """
    SELECT spec->>'retry_of' AS retry_of FROM cortex_task WHERE spec ? 'retry_of'
    UNION
    SELECT spec->>'retry_of' FROM cortex_task_done WHERE spec ? 'retry_of'
    """
}

extension ClusterSQL {
  /// `cortex cluster budget TOTAL`: the cluster's token budget total, created if no node has
  /// joined yet; never below what is reserved and used (the row's CHECK would refuse it). No row
  /// returned: refused, `budget` says why. $1 the new total.
  static let setBudgetTotal = """
    INSERT INTO cortex_budget (id, total) VALUES (1, $1::bigint)
    ON CONFLICT (id) DO UPDATE SET total = excluded.total
      WHERE cortex_budget.reserved + cortex_budget.used <= excluded.total
    RETURNING total
    """
}

extension ClusterSQL {
  /// Leader duty, budget: a queued task that needs more tokens than the cluster has not spent
  /// can never run (spent tokens do not come back); it ends `failed`, reason
  /// `token_budget_exhausted`, as on a single host. Only the head of the claim order is read
  /// (the claims' partial index), which is where such a task holds every task behind it: the
  /// claim reserves in order, so it took nothing past it, also no task without a budget.
  static let failUnaffordable = """
    WITH b AS (
      SELECT total - used AS unspent FROM cortex_budget WHERE id = 1
    ), ended AS (
      DELETE FROM cortex_task t
      WHERE t.id IN (
        SELECT id FROM cortex_task
        WHERE state = 'queued' AND unmet = 0
        ORDER BY priority DESC, id
        LIMIT 1000
        FOR UPDATE SKIP LOCKED)
        AND t.state = 'queued' AND t.token_budget > (SELECT unspent FROM b)
      RETURNING t.id, t.attempt, t.submitted_at, t.spec, t.grp, 'failed' AS final_state, 'token_budget_exhausted' AS final_reason
    \(endQueued)
    """
}
