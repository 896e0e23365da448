/// An invalid task spec or request: names the field and says what is wrong (exit 65).
public struct SpecError: Error, CustomStringConvertible, Equatable, Sendable {
  public let field: String
  public let message: String
  public init(_ field: String, _ message: String) {
    self.field = field
    self.message = message
  }
  /// The field written out for people: a field named by the input (an unknown key, an `env`
  /// name) keeps its control characters out of the message (`visible`).
  public var description: String { "\(visible(field)): \(message)" }
}
