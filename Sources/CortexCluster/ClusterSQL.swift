/// Every SQL statement cluster mode runs, named, in one place (the model is River's
/// `river_job.sql`). Values are always parameters (`$1`…); nothing is spliced into the text.
/// What each statement guarantees is in docs/cluster.md ("Transitions").
enum ClusterSQL {
  /// Join: take the name if it is free, or was alive once but its lease lapsed / it stopped;
  /// a new epoch fences everything the previous holder of the name claimed. No row: the name
  /// is held by a live node. $1 name, $2 lease seconds, $3 host, $4 pid, $5 workers, $6 take over
  /// a live-looking holder (only when it is this host's own daemon and its process is gone).
  /// The previous holder's web address is cleared: the new one publishes its own (`publishWeb`).
  static let joinNode = """
    INSERT INTO cortex_node AS n (name, epoch, state, lease_until, host, pid, workers, running, started_at)
    VALUES ($1, 1, 'alive', now() + make_interval(secs => $2::float8), $3, $4::int, $5::int, 0, now())
    ON CONFLICT (name) DO UPDATE
      SET epoch = n.epoch + 1, state = 'alive', lease_until = excluded.lease_until, host = excluded.host,
          pid = excluded.pid, workers = excluded.workers, running = 0, started_at = now(),
          web_url = '', web_peer_token = ''
      WHERE n.state <> 'alive' OR n.lease_until < now() OR $6::bool
    RETURNING epoch
    """

  /// Who holds a name (for the refusal message). $1 name.
  static let describeNode = """
    SELECT host, pid, round(extract(epoch FROM lease_until - now())::numeric, 1)::text AS lease_left_s
    FROM cortex_node WHERE name = $1
    """

  /// Renew the lease in database time; no row means this node was fenced or its lease lapsed.
  /// $1 name, $2 epoch, $3 lease seconds, $4 running tasks.
  static let renewLease = """
    UPDATE cortex_node SET lease_until = now() + make_interval(secs => $3::float8), running = $4::int
    WHERE name = $1 AND epoch = $2::bigint AND state = 'alive' AND lease_until > now()
    RETURNING extract(epoch FROM lease_until - now())::float8 AS lease_left_s,
      (SELECT q.paused FROM cortex_queue q WHERE q.id = 1) AS queue_paused,
      (SELECT q.changed_by FROM cortex_queue q WHERE q.id = 1) AS queue_changed_by,
      (SELECT \(listedGroupsJSON) FROM cortex_group g) AS groups
    """

  /// A clean stop: the name is free at once, and the node runs nothing (its row showed the tasks
  /// it ran when it left for as long as the row lived). $1 name, $2 epoch.
  static let leaveNode = """
    UPDATE cortex_node SET state = 'stopped', lease_until = now(), running = 0 WHERE name = $1 AND epoch = $2::bigint
    """

  /// The cluster's token budget, created by the first node to join. $1 total.
  static let initBudget = """
    INSERT INTO cortex_budget (id, total) VALUES (1, $1::bigint) ON CONFLICT (id) DO NOTHING
    """

  /// Queued tasks cluster-wide, for `max_queue` admission (the table holds only live work).
  static let queuedCount = "SELECT count(*) AS n FROM cortex_task WHERE state = 'queued'"

  /// The tasks that already carry some of the given idempotency keys, live or finished: a
  /// repeated submit answers with their ids instead of adding tasks. $1 a JSON array of keys.
  static let existingKeys = """
    SELECT idempotency_key AS key, id FROM cortex_task
    WHERE idempotency_key IN (SELECT jsonb_array_elements_text($1::jsonb))
    UNION ALL
    SELECT spec->>'idempotency_key', id FROM cortex_task_done
    WHERE spec ? 'idempotency_key' AND spec->>'idempotency_key' IN (SELECT jsonb_array_elements_text($1::jsonb))
    """

  /// Task ids for a batch, in order, before it is inserted. $1 count.
  static let allocateIDs = """
    SELECT nextval('cortex_task_id_seq') AS id FROM generate_series(1, $1::int)
    """

  /// A whole batch in one statement. $1 a JSON array of objects with id, priority, spec,
  /// token_budget, timeout_ms, max_attempts, idempotency_key, unmet (dependencies not yet
  /// succeeded), grp (the task's group).
  static let insertTasks = """
    INSERT INTO cortex_task (id, state, priority, spec, token_budget, timeout_ms, max_attempts, idempotency_key, unmet, grp)
    SELECT x.id, 'queued', x.priority, x.spec, x.token_budget, x.timeout_ms, x.max_attempts, x.idempotency_key, x.unmet,
      coalesce(x.grp, 'default')
    FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, priority smallint, spec jsonb, token_budget bigint,
      timeout_ms bigint, max_attempts int, idempotency_key text, unmet int, grp text)
    """

  /// A batch's dependency edges. $1 a JSON array of objects with task and depends_on.
  static let insertDeps = """
    INSERT INTO cortex_dep (task, depends_on)
    SELECT x.task, x.depends_on FROM jsonb_to_recordset($1::jsonb) AS x(task bigint, depends_on bigint)
    ON CONFLICT DO NOTHING
    """

  /// The payload-free hint that there is work to claim (or a dependency was met). Listeners
  /// claim at once; every node also polls at least once a second, so a lost hint costs latency,
  /// never a task.
  static let wakeNodes = "NOTIFY cortex_work"

  /// The hint that a running task was asked to stop: its owner checks its cancel flags at once.
  static let wakeCancel = "NOTIFY cortex_cancel"

  /// The hint that a group was paused, resumed or limited, or the queue paused: nodes read the
  /// groups (and the queue's flag) again before their next claim (a limit must hold for claims
  /// made right after it was set).
  static let wakeGroups = "NOTIFY cortex_groups"

  static let listen = ["LISTEN cortex_work", "LISTEN cortex_cancel", "LISTEN cortex_groups"]

  /// A node's connection runs short statements only; PostgreSQL's JIT compiler would compile one
  /// whose *estimated* cost is high every time it runs: the grouped claim's count per group
  /// (estimated before `cortex_group` has statistics) puts it past `jit_above_cost`, and each
  /// claim then took about twice as long: 211–222 ms with JIT (wall time, psql's own start of
  /// 25–27 ms included) against 115–123 ms of execution without (docs/bench/claim-groups-20261130-160217.txt).
  /// Servers without JIT (before 11) refuse the setting; that is ignored.
  static let noJIT = "SET jit = off"

  /// The secret values of a batch's tasks (SPEC §9: never in `spec`). $1 a JSON array of
  /// objects with id and secrets.
  static let insertSecrets = """
    INSERT INTO cortex_secret (task, secrets)
    SELECT x.id, x.secrets FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, secrets jsonb) WHERE x.secrets IS NOT NULL
    """

  /// Claim up to $3 ready tasks for node $1 at epoch $2: highest priority first, FIFO within a
  /// priority, skipping rows another node holds, only as many as the budget covers (strictly
  /// in order: a task that does not fit stops the claim), and only while the node's lease holds.
  /// The reservation is made in the same statement. Tasks without a token budget reserve nothing:
  /// while the running total is 0 the budget row is neither read nor locked (the `OR` stops
  /// before the sub-select), so claims of such tasks on several nodes do not queue on that row.
  ///
  /// This is the claim while no group is held back (the link uses `claimTasksGrouped` once it
  /// has read that one is): it claims nothing at all if `cortex_group` holds a group back by now
  /// (a pause or a limit set since), and the link, woken by `cortex_groups`, reads the groups and
  /// claims with the other statement.
  static let claimTasks = """
    WITH live AS (
      SELECT 1 FROM cortex_node WHERE name = $1 AND epoch = $2::bigint AND state = 'alive' AND lease_until > now()
        AND NOT EXISTS (SELECT 1 FROM cortex_queue WHERE paused)
        AND NOT EXISTS (SELECT 1 FROM cortex_group WHERE paused OR parallel > 0)
    ), budget AS (
      SELECT total - reserved - used AS available FROM cortex_budget WHERE id = 1 FOR UPDATE
    ), candidates AS (
      SELECT id, priority, token_budget FROM cortex_task
      WHERE state = 'queued' AND unmet = 0 AND not_before <= now() AND EXISTS (SELECT 1 FROM live)
      ORDER BY priority DESC, id
      LIMIT $3::int
      FOR UPDATE SKIP LOCKED
    \(claimFinish)
    """

  /// `claimTasks` while some group is held back (schema 6): a task of a group that
  /// `cortex_group` lists as paused is not taken; one of a group with a `parallel` limit only
  /// while the cluster runs fewer than that many of it, each such group taking at most its free
  /// slots (so a limited group at the head of the queue never holds back the others). The cost:
  /// the tasks of held groups that come first in priority order are read past on each claim
  /// (100,000 of them: 115–123 ms per claim of 50, against 2–3 ms with none held;
  /// docs/bench/claim-groups-20261130-160217.txt); an index on `grp` would cost every insert and
  /// claim, groups or not. A limited group's tasks fill at most $4 of the claim: the tasks the
  /// node can start at once (a task claimed to wait for a busy node's worker would hold one of
  /// the group's slots while another node's workers are idle). The running count is read
  /// in this statement's snapshot: a node claims for a limited group under `claimLock` (taken
  /// first, in the same transaction) so two nodes cannot both fill the same free slots. $5 says
  /// whether it did: a node that knew of paused groups only (a limit set a moment ago, its hint
  /// not yet read) takes no limited group's task in this claim, as it could fill slots that a
  /// claim under the lock is filling.
  static let claimTasksGrouped = """
    WITH live AS (
      SELECT 1 FROM cortex_node WHERE name = $1 AND epoch = $2::bigint AND state = 'alive' AND lease_until > now()
        AND NOT EXISTS (SELECT 1 FROM cortex_queue WHERE paused)
    ), budget AS (
      SELECT total - reserved - used AS available FROM cortex_budget WHERE id = 1 FOR UPDATE
    ), held AS (
      SELECT g.name, CASE WHEN g.paused OR NOT $5::bool THEN 0
        ELSE g.parallel - (SELECT count(*) FROM cortex_task r WHERE r.state = 'running' AND r.grp = g.name) END AS slots
      FROM cortex_group g WHERE g.paused OR g.parallel > 0
    ), free AS (
      SELECT id, priority, token_budget FROM cortex_task t
      WHERE state = 'queued' AND unmet = 0 AND not_before <= now() AND EXISTS (SELECT 1 FROM live)
        AND NOT EXISTS (SELECT 1 FROM held h WHERE h.name = t.grp)
      ORDER BY priority DESC, id
      LIMIT $3::int
      FOR UPDATE SKIP LOCKED
    ), limited AS (
      SELECT x.id, x.priority, x.token_budget FROM held h CROSS JOIN LATERAL (
        SELECT id, priority, token_budget FROM cortex_task t
        WHERE t.grp = h.name AND state = 'queued' AND unmet = 0 AND not_before <= now() AND EXISTS (SELECT 1 FROM live)
        ORDER BY priority DESC, id
        LIMIT least(h.slots, $4::int)
        FOR UPDATE SKIP LOCKED) x
      WHERE h.slots > 0
      ORDER BY x.priority DESC, x.id
      LIMIT $4::int
    ), candidates AS (
      SELECT id, priority, token_budget FROM (SELECT * FROM free UNION ALL SELECT * FROM limited) c
      ORDER BY priority DESC, id
      LIMIT $3::int
    \(claimFinish)
    """

  /// The end both claims share: from `candidates` (the rows taken, locked), as many as the budget
  /// covers in order, the reservation, and the claim itself.
  static let claimFinish = """
    ), ordered AS (
      SELECT id, token_budget, sum(token_budget) OVER (ORDER BY priority DESC, id) AS running_total FROM candidates
    ), chosen AS (
      SELECT o.id, o.token_budget FROM ordered o
      WHERE o.running_total = 0 OR o.running_total <= (SELECT available FROM budget)
    ), reserve AS (
      UPDATE cortex_budget SET reserved = reserved + (SELECT sum(token_budget) FROM chosen)
      WHERE id = 1 AND (SELECT coalesce(sum(token_budget), 0) FROM chosen) > 0
    )
    UPDATE cortex_task t
    SET state = 'running', node = $1, epoch = $2::bigint, attempt = greatest(t.attempt, coalesce(t.run_attempt, 0)) + 1,
      claimed_at = now(), started_at = NULL, run_attempt = NULL
    FROM chosen c WHERE t.id = c.id
    RETURNING t.id, t.priority, t.spec::text AS spec, t.token_budget, t.timeout_ms, t.max_attempts, t.attempt,
      t.cancel_requested, (SELECT s.secrets::text FROM cortex_secret s WHERE s.task = t.id) AS secrets, t.grp
    """

  /// What the claiming node does with its tasks, many in one statement (docs/cluster.md,
  /// "Starts and local retries"): a run that started (`started_at`, `run_attempt`), or one that
  /// ended and waits for the node's retry (`started_at` NULL). Conditional on the claim, like a
  /// terminal state; a row the fence does not match is left alone. $1 this node, $2 a JSON array
  /// of objects: id, epoch, attempt (the claim's), ran (the run's attempt), running (bool).
  static let markRuns = """
    UPDATE cortex_task t
    SET started_at = CASE WHEN x.running THEN now() END, run_attempt = greatest(coalesce(t.run_attempt, 0), x.ran)
    FROM jsonb_to_recordset($2::jsonb) AS x(id bigint, epoch bigint, attempt int, ran int, running boolean)
    WHERE t.id = x.id AND t.node = $1 AND t.epoch = x.epoch AND t.attempt = x.attempt AND t.state = 'running'
    """

  /// Serializes claims while a group has a `parallel` limit (see `claimTasksGrouped`).
  static let claimLock = "SELECT pg_advisory_xact_lock(109111114116101122)"

  /// The one accepted terminal state: conditional on the claim (node, epoch, attempt) — the
  /// fence. Moves the row to the history table, releases the reservation, charges the use (up
  /// to the reservation) and unblocks dependents on success, all in one statement. A task that
  /// reserved nothing leaves the budget row alone (its use is charged up to its reservation: 0).
  /// $1 id, $2 node, $3 epoch, $4 attempt, $5 state, $6 reason, $7 exit code, $8 tokens used.
  static let completeTask = """
    WITH done AS (
      DELETE FROM cortex_task
      WHERE id = $1::bigint AND node = $2 AND epoch = $3::bigint AND attempt = $4::int AND state = 'running'
      RETURNING id, node, epoch, greatest(attempt, coalesce(run_attempt, 0)) AS attempt, token_budget, submitted_at, spec, grp,
        started_at
    ), history AS (
      INSERT INTO cortex_task_done (id, state, reason, exit_code, node, epoch, attempt, tokens_used, submitted_at, spec, grp,
        started_at)
      SELECT id, $5, $6, $7::int, node, epoch, attempt, least($8::bigint, token_budget), submitted_at, spec, grp, started_at
      FROM done
    ), budget AS (
      UPDATE cortex_budget
      SET reserved = reserved - (SELECT token_budget FROM done),
          used = used + (SELECT least($8::bigint, token_budget) FROM done)
      WHERE id = 1 AND (SELECT coalesce(sum(token_budget), 0) FROM done) > 0
    ), unblock AS (
      UPDATE cortex_task SET unmet = unmet - 1
      WHERE $5 = 'succeeded' AND EXISTS (SELECT 1 FROM done)
        AND id IN (SELECT task FROM cortex_dep WHERE depends_on = $1::bigint)
    ), edges AS (
      DELETE FROM cortex_dep WHERE task = $1::bigint AND EXISTS (SELECT 1 FROM done)
    ), forget AS (
      DELETE FROM cortex_secret WHERE task = $1::bigint AND EXISTS (SELECT 1 FROM done)
    )
    SELECT count(*) AS accepted FROM done
    """

  /// Many terminal states in one statement (the same fence and effects as `completeTask`, per
  /// row). $1 a JSON array of objects: id, node, epoch, attempt (the claim's: the fence), state,
  /// reason, exit_code, tokens_used, and `ran`, the attempt the node's last run was (a node
  /// retries a failed task under one claim; null from an outbox written before). The record
  /// keeps the larger of the two attempts, and when the last run started (`markRuns`). Returns
  /// the ids accepted.
  static let completeTasks = """
    WITH input AS (
      SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, node text, epoch bigint, attempt int, state text,
        reason text, exit_code int, tokens_used bigint, ran int)
    ), done AS (
      DELETE FROM cortex_task t USING input i
      WHERE t.id = i.id AND t.node = i.node AND t.epoch = i.epoch AND t.attempt = i.attempt AND t.state = 'running'
      RETURNING t.id, t.node, t.epoch, greatest(t.attempt, coalesce(i.ran, t.run_attempt, 0)) AS attempt, t.token_budget,
        t.submitted_at, t.spec, t.grp, i.state AS final_state, i.reason, i.exit_code,
        least(i.tokens_used, t.token_budget) AS charged, t.started_at
    ), history AS (
      INSERT INTO cortex_task_done (id, state, reason, exit_code, node, epoch, attempt, tokens_used, submitted_at, spec, grp,
        started_at)
      SELECT id, final_state, reason, exit_code, node, epoch, attempt, charged, submitted_at, spec, grp, started_at FROM done
    ), budget AS (
      UPDATE cortex_budget
      SET reserved = reserved - (SELECT sum(token_budget) FROM done), used = used + (SELECT sum(charged) FROM done)
      WHERE id = 1 AND (SELECT coalesce(sum(token_budget), 0) FROM done) > 0
    ), unblock AS (
      UPDATE cortex_task SET unmet = unmet - d.n
      FROM (SELECT dep.task, count(*) AS n FROM cortex_dep dep JOIN done ON done.id = dep.depends_on
            WHERE done.final_state = 'succeeded' GROUP BY dep.task) d
      WHERE cortex_task.id = d.task
      RETURNING cortex_task.unmet
    ), edges AS (
      DELETE FROM cortex_dep WHERE task IN (SELECT id FROM done)
    ), forget AS (
      DELETE FROM cortex_secret WHERE task IN (SELECT id FROM done)
    )
    SELECT id, (SELECT count(*) FROM unblock WHERE unmet = 0) AS ready FROM done
    """

  /// Rescue, run by whichever node wins the advisory lock (the leader for this round): nodes
  /// whose lease lapsed are fenced (epoch + 1), and every running task whose claim is not backed
  /// by a live lease goes back to the queue with its reservation released — one statement, so
  /// one transaction. Such a task that someone asked to cancel ends `cancelled` instead, as a
  /// queued one would (requeued, it ran again on the next node to claim it, until that node read
  /// the flag). A fenced node runs nothing the cluster counts (its `running`, from its last
  /// renewal, went on showing in `cortex cluster status`). Returns the fenced nodes and the
  /// numbers of tasks requeued and cancelled.
  static let rescue = """
    WITH fenced AS (
      UPDATE cortex_node SET state = 'fenced', epoch = epoch + 1, running = 0
      WHERE state = 'alive' AND lease_until < now()
      RETURNING name
    ), orphans AS (
      UPDATE cortex_task t SET state = 'queued', node = NULL, epoch = NULL, claimed_at = NULL, not_before = now(), started_at = NULL
      WHERE t.state = 'running' AND NOT t.cancel_requested AND NOT EXISTS (
        SELECT 1 FROM cortex_node n
        WHERE n.name = t.node AND n.epoch = t.epoch AND n.state = 'alive' AND n.lease_until >= now())
      RETURNING t.id, t.token_budget
    ), cancelled AS (
      DELETE FROM cortex_task t
      WHERE t.state = 'running' AND t.cancel_requested AND NOT EXISTS (
        SELECT 1 FROM cortex_node n
        WHERE n.name = t.node AND n.epoch = t.epoch AND n.state = 'alive' AND n.lease_until >= now())
      RETURNING t.id, t.token_budget, t.node, t.epoch, t.attempt, t.submitted_at, t.spec, t.grp
    ), history AS (
      INSERT INTO cortex_task_done (id, state, reason, node, epoch, attempt, submitted_at, spec, grp)
      SELECT id, 'cancelled', 'cancelled', node, epoch, attempt, submitted_at, spec, grp FROM cancelled
    ), edges AS (
      DELETE FROM cortex_dep WHERE task IN (SELECT id FROM cancelled)
    ), forget AS (
      DELETE FROM cortex_secret WHERE task IN (SELECT id FROM cancelled)
    ), freed AS (
      SELECT coalesce(sum(token_budget), 0) AS tokens FROM (
        SELECT token_budget FROM orphans UNION ALL SELECT token_budget FROM cancelled) x
    ), release AS (
      UPDATE cortex_budget SET reserved = reserved - (SELECT tokens FROM freed)
      WHERE id = 1 AND (SELECT tokens FROM freed) > 0
    )
    SELECT (SELECT coalesce(string_agg(name, ','), '') FROM fenced) AS fenced,
           (SELECT count(*) FROM orphans) AS requeued, (SELECT count(*) FROM cancelled) AS cancelled
    """

  /// Cancel from any node: queued tasks end at once (moved to the history as `cancelled`; they
  /// hold no reservation); running ones are flagged and their owner stops them. $1 an array of ids.
  static let requestCancel = """
    WITH q AS (
      DELETE FROM cortex_task WHERE id = ANY($1::bigint[]) AND state = 'queued'
      RETURNING id, attempt, submitted_at, spec, grp
    ), history AS (
      INSERT INTO cortex_task_done (id, state, reason, attempt, submitted_at, spec, grp)
      SELECT id, 'cancelled', 'cancelled', attempt, submitted_at, spec, grp FROM q
    ), edges AS (
      DELETE FROM cortex_dep WHERE task IN (SELECT id FROM q)
    ), forget AS (
      DELETE FROM cortex_secret WHERE task IN (SELECT id FROM q)
    )
    UPDATE cortex_task SET cancel_requested = true WHERE id = ANY($1::bigint[]) AND state = 'running'
    """

  /// Where each of the given tasks stands cluster-wide: finished (with its outcome), live, or
  /// unknown (absent from both). $1 an array of ids.
  static let taskOutcomes = """
    SELECT i.id, d.state AS done_state, d.exit_code, d.reason, d.node AS done_node, t.state AS live_state
    FROM unnest($1::bigint[]) AS i(id)
    LEFT JOIN cortex_task_done d ON d.id = i.id
    LEFT JOIN cortex_task t ON t.id = i.id
    """

  /// Which of the given running tasks have a cancel request. $1 an array of ids.
  static let cancelRequested = """
    SELECT id FROM cortex_task WHERE id = ANY($1::bigint[]) AND cancel_requested
    """

  /// One task as the cluster knows it, live or finished (for `show` on any node). $1 id. A
  /// rescue does not use up an attempt the task does not have (as a node's own requeue, and as
  /// `adopt` counts it): a rescued task showed `attempt 2 of 1`.
  /// The attempt is the run the claiming node is on (`run_attempt`: it retries a failed task
  /// under one claim) when that is past the claim's, and a finished task's is of its spec's
  /// `max_attempts`, as a node's own `show` counts them (another node's `show` said `attempt 1`
  /// of a task its node had run three times). `started_ms`: when its current (or last) run
  /// started, by the database's clock.
  static let describeTask = """
    SELECT t.id, t.state, t.node, t.epoch, greatest(t.attempt, coalesce(t.run_attempt, 0)) AS attempt,
           greatest(t.max_attempts, t.attempt, coalesce(t.run_attempt, 0)) AS max_attempts, t.token_budget,
           t.spec::text AS spec,
           NULL::int AS exit_code, NULL::text AS reason, NULL::bigint AS tokens_used,
           (extract(epoch FROM t.submitted_at) * 1000)::bigint AS submitted_ms, NULL::bigint AS ended_ms, t.grp,
           (extract(epoch FROM t.started_at) * 1000)::bigint AS started_ms
    FROM cortex_task t WHERE t.id = $1::bigint
    UNION ALL
    SELECT d.id, d.state, d.node, d.epoch, d.attempt,
           greatest(coalesce((d.spec->>'max_attempts')::int, 1), d.attempt), NULL, d.spec::text, d.exit_code, d.reason,
           d.tokens_used, (extract(epoch FROM d.submitted_at) * 1000)::bigint, (extract(epoch FROM d.ended_at) * 1000)::bigint,
           coalesce(d.grp, d.spec->>'group'), (extract(epoch FROM d.started_at) * 1000)::bigint
    FROM cortex_task_done d WHERE d.id = $1::bigint
    """

  /// The dependencies of queued task $1 that have not succeeded yet, with their state (live,
  /// finished, or `unknown`): what `show` names as holding it.
  static let describeWaitingOn = """
    SELECT d.depends_on AS id, coalesce(l.state, x.state, 'unknown') AS state
    FROM cortex_dep d LEFT JOIN cortex_task l ON l.id = d.depends_on LEFT JOIN cortex_task_done x ON x.id = d.depends_on
    WHERE d.task = $1::bigint AND coalesce(x.state, '') <> 'succeeded'
    ORDER BY d.depends_on
    """

  /// Leader duty, dependencies: queued tasks that wait on a task which ended without success can
  /// never run; they end `cancelled` (reason `dependency_failed`), as on a single host. Run until
  /// it returns 0 so a chain is settled level by level.
  static let cancelDoomed = """
    WITH ended AS (
      DELETE FROM cortex_task t
      WHERE t.state = 'queued' AND t.unmet > 0 AND EXISTS (
        SELECT 1 FROM cortex_dep d JOIN cortex_task_done x ON x.id = d.depends_on
        WHERE d.task = t.id AND x.state <> 'succeeded')
      RETURNING t.id, t.attempt, t.submitted_at, t.spec, t.grp, 'cancelled' AS final_state, 'dependency_failed' AS final_reason
    \(endQueued)
    """

  /// The end of a statement that removed queued tasks from `cortex_task` in a CTE `ended`
  /// (returning id, attempt, submitted_at, spec, grp, final_state, final_reason): their records
  /// in the history, their edges and secrets gone; returns how many.
  static let endQueued = """
    ), history AS (
      INSERT INTO cortex_task_done (id, state, reason, attempt, submitted_at, spec, grp)
      SELECT id, final_state, final_reason, attempt, submitted_at, spec, grp FROM ended
    ), edges AS (
      DELETE FROM cortex_dep WHERE task IN (SELECT id FROM ended)
    ), forget AS (
      DELETE FROM cortex_secret WHERE task IN (SELECT id FROM ended)
    )
    SELECT count(*) AS n FROM ended
    """

  /// Leader duty, dependencies: the count of unmet dependencies recomputed for waiting tasks.
  /// The terminal statement decrements it as dependencies succeed; a dependency that ended
  /// while its dependent's submit was still uncommitted is caught here, within a second.
  static let recountUnmet = """
    UPDATE cortex_task t SET unmet = c.n
    FROM (
      SELECT w.id, (SELECT count(*) FROM cortex_dep d WHERE d.task = w.id AND NOT EXISTS (
        SELECT 1 FROM cortex_task_done x WHERE x.id = d.depends_on AND x.state = 'succeeded')) AS n
      FROM cortex_task w WHERE w.state = 'queued' AND w.unmet > 0
    ) c
    WHERE t.id = c.id AND t.unmet <> c.n
    RETURNING t.id
    """

  /// Leader duty, retention: finished tasks older than the history setting leave the history
  /// table, a bounded slice per round. $1 seconds to keep.
  static let trimHistory = """
    WITH gone AS (
      DELETE FROM cortex_task_done WHERE id IN (
        SELECT id FROM cortex_task_done WHERE ended_at < now() - make_interval(secs => $1::float8)
        ORDER BY ended_at LIMIT 10000)
      RETURNING 1
    )
    SELECT count(*) AS n FROM gone
    """

  /// The sizes `cortex cluster status` and the soak report: rows, dead rows, bytes per table.
  static let tableStats = """
    SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid) AS bytes,
      coalesce(extract(epoch FROM now() - greatest(last_autovacuum, last_vacuum))::bigint, -1) AS vacuumed_s_ago
    FROM pg_stat_user_tables WHERE relname LIKE 'cortex%' ORDER BY relname
    """

  /// `list` on any node: the newest tasks cluster-wide, live and finished, filtered by state
  /// (a state, `active` or `done`) and type. $1 state or NULL, $2 type or NULL, $3 how many.
  /// A spec without `type` is `exec` (or `synthetic`), as `TaskRecord.type` says on a single host;
  /// a finished task's priority is its spec's (the history table has no priority column); its
  /// group is the one the cluster counted it in (`grp`, schema 8; its spec's for a task that
  /// ended before that version, which names none when its worker type gave it its group).
  static let listTasks = """
    (SELECT id, state, coalesce(spec->>'type', CASE WHEN spec ? 'synthetic' THEN 'synthetic' ELSE 'exec' END) AS type,
       priority, NULL::text AS priority_name, node, greatest(attempt, coalesce(run_attempt, 0)) AS attempt,
       NULL::int AS exit_code, NULL::text AS reason,
       spec->>'description' AS description, (extract(epoch FROM submitted_at) * 1000)::bigint AS submitted_ms,
       NULL::bigint AS ended_ms, grp, (extract(epoch FROM started_at) * 1000)::bigint AS started_ms
     FROM cortex_task
     WHERE ($1::text IS NULL OR $1 = 'active' OR state = $1) AND $1::text IS DISTINCT FROM 'done'
       AND ($2::text IS NULL OR coalesce(spec->>'type', CASE WHEN spec ? 'synthetic' THEN 'synthetic' ELSE 'exec' END) = $2)
     ORDER BY id DESC LIMIT $3::int)
    UNION ALL
    (SELECT id, state, coalesce(spec->>'type', CASE WHEN spec ? 'synthetic' THEN 'synthetic' ELSE 'exec' END),
       NULL, spec->>'priority', node, attempt, exit_code, reason, spec->>'description',
       (extract(epoch FROM submitted_at) * 1000)::bigint, (extract(epoch FROM ended_at) * 1000)::bigint,
       coalesce(grp, spec->>'group'), (extract(epoch FROM started_at) * 1000)::bigint
     FROM cortex_task_done
     WHERE ($1::text IS NULL OR $1 = 'done' OR state = $1) AND $1::text IS DISTINCT FROM 'active'
       AND ($2::text IS NULL OR coalesce(spec->>'type', CASE WHEN spec ? 'synthetic' THEN 'synthetic' ELSE 'exec' END) = $2)
     ORDER BY id DESC LIMIT $3::int)
    ORDER BY id DESC LIMIT $3::int
    """

  /// Only one node rescues at a time: an advisory lock held for the transaction.
  static let tryLeaderLock = "SELECT pg_try_advisory_xact_lock(109111114116101121) AS leader"

  /// Budget invariant check, for status and tests.
  static let budget = "SELECT total, reserved, used, total - reserved - used AS available FROM cortex_budget WHERE id = 1"
}
