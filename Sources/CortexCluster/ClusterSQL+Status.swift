/// The statements that read the cluster at a glance, for `cortex cluster status` and the web
/// view's snapshot (`ClusterStatus`), and that publish and read the nodes' web addresses. Part of
/// `ClusterSQL`: every statement cluster mode runs is named in `ClusterSQL` and its extensions,
/// nowhere else.
extension ClusterSQL {
  /// Every node with its epoch, lease (seconds left, by database time) and load, for
  /// `cortex cluster status` and the web view's cluster snapshot.
  /// `running` counts the runs its tasks' rows say started (`markRuns`, written as they start),
  /// `claimed` those claimed and not started (waiting for a worker, or for a local retry): the
  /// count the node wrote with its lease renewal, every lease/3, lagged behind its starts.
  static let nodeStatus = """
    SELECT n.name, n.epoch, n.state, n.host, n.pid, n.workers,
           coalesce(c.running, 0) AS running, coalesce(c.claimed, 0) AS claimed,
           round(extract(epoch FROM n.lease_until - now())::numeric, 1)::text AS lease_left_s
    FROM cortex_node n
    LEFT JOIN (SELECT node, epoch, count(started_at) AS running, count(*) - count(started_at) AS claimed
               FROM cortex_task WHERE state = 'running' GROUP BY node, epoch) c
      ON c.node = n.name AND c.epoch = n.epoch AND n.state = 'alive'
    ORDER BY n.name
    """

  /// The cluster's load in one row: live tasks by state, finished ones, the token budget.
  static let clusterLoad = """
    SELECT (SELECT count(*) FROM cortex_task WHERE state = 'queued') AS queued,
           (SELECT count(*) FROM cortex_task WHERE state = 'running') AS running,
           (SELECT count(*) FROM cortex_task_done) AS done,
           (SELECT total FROM cortex_budget) AS budget_total,
           (SELECT reserved FROM cortex_budget) AS budget_reserved,
           (SELECT used FROM cortex_budget) AS budget_used,
           (SELECT paused FROM cortex_queue WHERE id = 1) AS queue_paused
    """

  /// The running tasks and the node each runs on (the web view's cluster snapshot), at most $1.
  static let runningTasks = """
    SELECT id, node FROM cortex_task WHERE state = 'running' ORDER BY node, id LIMIT $1::int
    """

  /// The cluster's tasks by state and priority (live ones) and by state (finished ones), for
  /// the web view's cluster-wide counts and queue by priority. Live `running` rows include the
  /// tasks a node has claimed but not started yet.
  static let clusterCounts = """
    SELECT state, priority::text AS priority, count(*) AS n FROM cortex_task GROUP BY state, priority
    UNION ALL
    SELECT state, NULL, count(*) FROM cortex_task_done GROUP BY state
    """

  /// Where this node's web view can be read by its peers, and the read-only token they send.
  /// $1 name, $2 epoch, $3 address (http://IPv4:port/), $4 token.
  static let publishWeb = """
    UPDATE cortex_node SET web_url = $3, web_peer_token = $4 WHERE name = $1 AND epoch = $2::bigint
    """

  /// The web views of the other nodes (for the pages of this one): name, state, host, address
  /// and read-only token. Never shown on a page or in an API answer.
  static let peerAddresses = """
    SELECT name, state, host, web_url, web_peer_token FROM cortex_node ORDER BY name
    """
}
