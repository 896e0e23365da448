import CortexCore

/// One decision-log line as the daemon writes it: the standard fields first, then `extra`
/// (`,"key":value…`).
func logLine(_ seq: Int, _ ms: Int64, _ type: String, task: Int? = nil, worker: Int? = nil, _ extra: String = "") -> ArraySlice<UInt8> {
  var s = #"{"seq":\#(seq),"ts":"\#(Timestamp.rfc3339(ms: ms))","type":"\#(type)""#
  if let task { s += #","task_id":"\#(TaskID.format(task))""# }
  if let worker { s += #","worker_id":"\#(WorkerID.format(worker))""# }
  s += extra + "}"
  return Array(s.utf8)[...]
}
