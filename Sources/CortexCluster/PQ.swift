import Posix

/// libpq, the PostgreSQL C client from Debian (`libpq5`), loaded at run time with dlopen so the
/// single-host build links nothing new. Each function is looked up once; `PQ.load()` says what is
/// missing in words a person can act on.
struct PQ: @unchecked Sendable {
  // @unchecked: a table of C function pointers, written once by `load` and only read afterwards.
  typealias Conn = OpaquePointer
  typealias Result = OpaquePointer

  /// PQconnectdbParams(keywords, values, expand_dbname): the DSN goes in as `dbname` and is expanded.
  let connectdbParams: @convention(c) (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?, Int32) -> Conn?
  let status: @convention(c) (Conn?) -> Int32
  let errorMessage: @convention(c) (Conn?) -> UnsafePointer<CChar>?
  let finish: @convention(c) (Conn?) -> Void
  let execParams:
    @convention(c) (
      Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<UInt32>?, UnsafePointer<UnsafePointer<CChar>?>?,
      UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int32
    ) -> Result?
  let prepare: @convention(c) (Conn?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int32, UnsafePointer<UInt32>?) -> Result?
  let execPrepared:
    @convention(c) (
      Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
      UnsafePointer<Int32>?, Int32
    ) -> Result?
  let resultStatus: @convention(c) (Result?) -> Int32
  let resultErrorMessage: @convention(c) (Result?) -> UnsafePointer<CChar>?
  let resultErrorField: @convention(c) (Result?, Int32) -> UnsafePointer<CChar>?
  let ntuples: @convention(c) (Result?) -> Int32
  let nfields: @convention(c) (Result?) -> Int32
  let fname: @convention(c) (Result?, Int32) -> UnsafePointer<CChar>?
  let getvalue: @convention(c) (Result?, Int32, Int32) -> UnsafePointer<CChar>?
  let getisnull: @convention(c) (Result?, Int32, Int32) -> Int32
  let clear: @convention(c) (Result?) -> Void
  let socket: @convention(c) (Conn?) -> Int32
  let consumeInput: @convention(c) (Conn?) -> Int32
  let notifies: @convention(c) (Conn?) -> UnsafeMutableRawPointer?
  let freemem: @convention(c) (UnsafeMutableRawPointer?) -> Void
  let serverVersion: @convention(c) (Conn?) -> Int32

  static let connectionOK: Int32 = 0
  static let commandOK: Int32 = 1
  static let tuplesOK: Int32 = 2
  /// PG_DIAG_SQLSTATE
  static let fieldSQLState: Int32 = 67

  /// The library, or why it cannot be had.
  static let shared: Swift.Result<PQ, ClusterError> = load()

  static func load() -> Swift.Result<PQ, ClusterError> {
    let lib: DynamicLibrary
    switch DynamicLibrary.open(["libpq.so.5", "libpq.so"]) {
    case .success(let l): lib = l
    case .failure(let e):
      return .failure(
        ClusterError(
          .libraryMissing,
          "cluster mode needs libpq, the PostgreSQL client library (\(e)); install it with: apt-get install libpq5"))
    }
    var missing: [String] = []
    func sym<T>(_ name: String, _: T.Type) -> T? {
      guard let p = lib.symbol(name) else {
        missing.append(name)
        return nil
      }
      return unsafeBitCast(p, to: T.self)
    }
    typealias ExecParams =
      @convention(c) (
        Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<UInt32>?, UnsafePointer<UnsafePointer<CChar>?>?,
        UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int32
      ) -> Result?
    typealias Prepare =
      @convention(c) (Conn?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int32, UnsafePointer<UInt32>?) -> Result?
    typealias ExecPrepared =
      @convention(c) (
        Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
        UnsafePointer<Int32>?, Int32
      ) -> Result?
    typealias ConnectParams =
      @convention(c) (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?, Int32) -> Conn?
    guard let connectdbParams = sym("PQconnectdbParams", ConnectParams.self),
      let status = sym("PQstatus", (@convention(c) (Conn?) -> Int32).self),
      let errorMessage = sym("PQerrorMessage", (@convention(c) (Conn?) -> UnsafePointer<CChar>?).self),
      let finish = sym("PQfinish", (@convention(c) (Conn?) -> Void).self),
      let execParams = sym("PQexecParams", ExecParams.self),
      let prepare = sym("PQprepare", Prepare.self),
      let execPrepared = sym("PQexecPrepared", ExecPrepared.self),
      let resultStatus = sym("PQresultStatus", (@convention(c) (Result?) -> Int32).self),
      let resultErrorMessage = sym("PQresultErrorMessage", (@convention(c) (Result?) -> UnsafePointer<CChar>?).self),
      let resultErrorField = sym("PQresultErrorField", (@convention(c) (Result?, Int32) -> UnsafePointer<CChar>?).self),
      let ntuples = sym("PQntuples", (@convention(c) (Result?) -> Int32).self),
      let nfields = sym("PQnfields", (@convention(c) (Result?) -> Int32).self),
      let fname = sym("PQfname", (@convention(c) (Result?, Int32) -> UnsafePointer<CChar>?).self),
      let getvalue = sym("PQgetvalue", (@convention(c) (Result?, Int32, Int32) -> UnsafePointer<CChar>?).self),
      let getisnull = sym("PQgetisnull", (@convention(c) (Result?, Int32, Int32) -> Int32).self),
      let clear = sym("PQclear", (@convention(c) (Result?) -> Void).self),
      let socket = sym("PQsocket", (@convention(c) (Conn?) -> Int32).self),
      let consumeInput = sym("PQconsumeInput", (@convention(c) (Conn?) -> Int32).self),
      let notifies = sym("PQnotifies", (@convention(c) (Conn?) -> UnsafeMutableRawPointer?).self),
      let freemem = sym("PQfreemem", (@convention(c) (UnsafeMutableRawPointer?) -> Void).self),
      let serverVersion = sym("PQserverVersion", (@convention(c) (Conn?) -> Int32).self)
    else {
      return .failure(
        ClusterError(.libraryMissing, "the libpq found lacks \(missing.joined(separator: ", ")); install a current libpq5"))
    }
    return .success(
      PQ(
        connectdbParams: connectdbParams, status: status, errorMessage: errorMessage, finish: finish, execParams: execParams,
        prepare: prepare, execPrepared: execPrepared,
        resultStatus: resultStatus, resultErrorMessage: resultErrorMessage, resultErrorField: resultErrorField,
        ntuples: ntuples, nfields: nfields, fname: fname, getvalue: getvalue, getisnull: getisnull, clear: clear,
        socket: socket, consumeInput: consumeInput, notifies: notifies, freemem: freemem, serverVersion: serverVersion))
  }
}

/// A failure talking to PostgreSQL, with the SQLSTATE when the server gave one.
public struct ClusterError: Error, CustomStringConvertible, Sendable {
  public enum Kind: Sendable {
    /// libpq is not installed (or too old).
    case libraryMissing
    /// Could not connect: wrong DSN, host down, authentication failed.
    case connect
    /// The server refused a statement.
    case statement
    /// The schema is newer than this binary, or missing.
    case schema
    /// A node or configuration conflict (e.g. a node name already alive).
    case conflict
    /// Refused for now (backpressure): `reason` says why, as a refusal's reason word.
    case refused(reason: String)
    /// A submitted field is wrong (exit 65): `field` names it, the message says why.
    case invalid(field: String, index: Int?)
  }
  public let kind: Kind
  public let message: String
  public let sqlState: String?
  /// The connection broke while a COMMIT was on its way: the transaction may have been committed
  /// (the server received it and the answer was lost) or not. Of kind `connect`.
  public let outcomeUnknown: Bool
  /// The server answered and refused the login (a wrong password, an unknown role or database,
  /// no pg_hba.conf entry), or libpq could not read the connection string: a setting to fix,
  /// not a server that is down. Of kind `connect`.
  public let misconfigured: Misconfiguration?
  public enum Misconfiguration: Sendable {
    case login
    case connectionString
  }
  public init(
    _ kind: Kind, _ message: String, sqlState: String? = nil, outcomeUnknown: Bool = false, misconfigured: Misconfiguration? = nil
  ) {
    self.kind = kind
    self.message = message
    self.sqlState = sqlState
    self.outcomeUnknown = outcomeUnknown
    self.misconfigured = misconfigured
  }
  public var description: String { message }
}
