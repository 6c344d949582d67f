// The value `let NAME = ACTION` binds: a step's result on one host, and its fields.

import Foundation
import Runtime

/// A step's result on one host, as `let NAME = ACTION` binds it.
public struct ActionResult: Hashable, Sendable {
  public var status: StepStatus
  /// The exit status of the step's command; nil when none ran to its end.
  public var exitCode: Int32?
  /// Standard output, leading and trailing whitespace removed.
  public var output: String
  /// Standard error, leading and trailing whitespace removed.
  public var errorOutput: String
  public var message: String

  public init(_ result: StepResult) {
    status = result.status
    exitCode = result.exitCode
    output = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    errorOutput = result.errorOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    message = result.message ?? ""
  }
}

/// The fields of a result (`r.changed`, …).
enum ResultField: String, CaseIterable {
  case ok, changed, failed, skipped, status
  case exitCode = "exit_code"
  case output, stderr, message

  func value(of result: ActionResult) -> Value {
    switch self {
    case .ok: .boolean([.ok, .changed, .skipped].contains(result.status))
    case .changed: .boolean(result.status == .changed)
    case .failed: .boolean(result.status == .failed)
    case .skipped: .boolean(result.status == .skipped)
    case .status: .string(result.status.rawValue)
    case .exitCode: .integer(result.exitCode.map(Int.init) ?? -1)
    case .output: .string(result.output)
    case .stderr: .string(result.errorOutput)
    case .message: .string(result.message)
    }
  }

  /// The fields' names, for messages: "ok, changed, …, stderr and message".
  static let listed = allCases.dropLast().map(\.rawValue).joined(separator: ", ") + " and " + allCases.last!.rawValue
}
