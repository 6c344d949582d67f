// Values of CFIScript at run time.

import CFISyntax
import Runtime

/// A run-time value.
public enum Value: Hashable, Sendable {
  case string(String)
  case integer(Int)
  case boolean(Bool)
  case duration(Duration)
  case percent(Int)
  case list([Value])
  /// `host` inside an `on` block.
  case host(Host)
  /// What `let NAME = ACTION` binds: the step's result on the host.
  case result(ActionResult)

  /// The type's name, for error messages.
  public var typeName: String {
    switch self {
    case .string: "a string"
    case .integer: "a number"
    case .boolean: "a boolean"
    case .duration: "a duration"
    case .percent: "a percentage"
    case .list: "a list"
    case .host: "a host"
    case .result: "the result of an action"
    }
  }

  /// The value as text, as interpolation shows it: lists joined with spaces.
  public var text: String {
    switch self {
    case .string(let text): text
    case .integer(let value): String(value)
    case .boolean(let value): String(value)
    case .duration(let duration): duration.cfiText
    case .percent(let value): "\(value)%"
    case .list(let elements): elements.map(\.text).joined(separator: " ")
    case .host(let host): host.name.rawValue
    case .result(let result): result.output
    }
  }

  /// The value as operators and built-in functions see it: a result is its output, a string,
  /// also inside lists (so `k == "6.1"`, `"6.1" in k` and `len(k)` keep working on `let k = run …`).
  public var plain: Value {
    switch self {
    case .result(let result): .string(result.output)
    case .list(let elements): .list(elements.map(\.plain))
    default: self
    }
  }

  /// The value with nested lists flattened into one list (a scalar is a list of itself).
  public var flattened: [Value] {
    if case .list(let elements) = self { return elements.flatMap(\.flattened) }
    return [self]
  }
}

/// The fields of `host` (`host.name`, …).
enum HostField: String, CaseIterable {
  case name, group, address

  func value(of host: Host) -> Value {
    switch self {
    case .name: .string(host.name.rawValue)
    case .group: .string(host.group.rawValue)
    case .address: .string(host.connectAddress.rawValue)
    }
  }
}
