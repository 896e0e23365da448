/// What the redaction of earlier specs found clean, so that the next spec from the same shell
/// is not scanned again. A shell loop of `cortex submit` sends the same ≈35 environment
/// variables with every task, and scanning each name and value (`Redaction.isSecret`,
/// `Redaction.mask`) was the largest part of the daemon's work between a submit's request and
/// its answer. Only names and values found *not* secret are kept: no secret is held here, and a
/// hit gives the answer the scan would give. Bounded: when a set is full it starts again.
public struct RedactionMemo: Sendable {
  /// Names `Redaction.isSecret` said no to.
  var plainNames: Set<String> = []
  /// Values `Redaction.mask` found nothing in.
  var cleanValues: Set<String> = []
  /// Entries kept in each set at most (a value is at most `max_spec_bytes` long).
  public static let capacity = 4096

  public init() {}

  /// `Redaction.isSecret(name)`, remembered when false.
  mutating func isSecret(_ name: String) -> Bool {
    if plainNames.contains(name) { return false }
    if Redaction.isSecret(name) { return true }
    if plainNames.count >= Self.capacity { plainNames.removeAll(keepingCapacity: true) }
    plainNames.insert(name)
    return false
  }

  /// `Redaction.mask(text)`, remembered when nil.
  mutating func mask(_ text: String) -> String? {
    if cleanValues.contains(text) { return nil }
    if let masked = Redaction.mask(text) { return masked }
    if cleanValues.count >= Self.capacity { cleanValues.removeAll(keepingCapacity: true) }
    cleanValues.insert(text)
    return nil
  }

  /// Whether `text` is remembered as a clean name or value (for tests).
  public func remembers(_ text: String) -> Bool { plainNames.contains(text) || cleanValues.contains(text) }

  /// Names and values remembered.
  public var count: Int { plainNames.count + cleanValues.count }
}
