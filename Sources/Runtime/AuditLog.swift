// The audit log: one JSON line per host result and one per run, appended to a file
// (default /var/log/cfi/audit.log), so every run leaves exactly one record of what it did.
// Secrets never reach it: every line passes `Secret.redactingHashes` on its way to the file,
// whatever field holds the hash (an argument, a failure message, a runbook's `fail`).

import Foundation
import Synchronization

/// Appends audit records for one run. Use it as an EventSink (next to the renderer), then
/// call `finish(exitStatus:)` once.
public final class AuditLog: EventSink {
  /// Where the log goes unless told otherwise.
  public static let defaultPath = "/var/log/cfi/audit.log"

  private struct State {
    var runbook = ""
    var check = false
    var started = Date()
    var outcomes: [String: String] = [:]
    var failure: String?
  }

  private let descriptor: Int32
  private let runID: String
  private let arguments: [String]
  /// The store the run worked on (so `--limit @failed` finds the last run on the same store).
  private let store: String?
  /// The text of a runbook that has no file (`-c`, standard input).
  private let source: String?
  private let state = Mutex(State())
  private let encoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return encoder
  }()

  /// Opens (creating it and its directory, mode 0600) the log at `path`, for the run `runID`
  /// (the id its events carry; a new one when not given).
  public init(
    path: String, runID: String = UUID().uuidString.lowercased(), arguments: [String], store: String? = nil,
    source: String? = nil
  ) throws(TextFileError) {
    let directory = (path as NSString).deletingLastPathComponent
    // A bare file name (`--audit-log audit.log`) is in the current directory: none to make.
    if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
      do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
        throw TextFileError(path: path, reason: TextFileError.reason(of: error))
      }
    }
    descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw TextFileError(path: path, reason: String(cString: strerror(errno))) }
    self.runID = runID
    self.arguments = arguments
    self.store = store
    self.source = source
  }

  deinit { close(descriptor) }

  private struct HostRecord: Encodable {
    var record = "host"
    var run: String
    var time: Date
    var block: Int
    var host: String
    var group: String
    var status: String
    var message: String?
    var reason: String?
  }

  private struct RunRecord: Encodable {
    var record = "run"
    var run: String
    var started: Date
    var finished: Date
    var user: String
    var sudoUser: String?
    var runbook: String
    var arguments: [String]
    var store: String?
    var source: String?
    var check: Bool
    var exitStatus: Int32
    /// What stopped the run from outside (`SIGTERM`, …), if anything did.
    var signal: String?
    var error: String?
    var hosts: [String: String]
  }

  private func append(_ record: some Encodable) {
    guard let json = try? encoder.encode(record) else { return }
    // Every field, also free text (a failure message, a `fail` of the runbook, an argument
    // with a hash inside), passes the one redaction on its way to the file.
    var data = Data(Secret.redactingHashes(in: String(decoding: json, as: UTF8.self)).utf8)
    data.append(UInt8(ascii: "\n"))
    // One write per line with O_APPEND: lines from concurrent runs never interleave.
    _ = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
  }

  public func emit(_ event: Event) {
    switch event {
    case .runStarted(let runbook, let check, let date, _):
      state.withLock {
        $0.runbook = runbook
        $0.check = check
        $0.started = date
      }
    case .hostFinished(let block, let outcome):
      state.withLock { $0.outcomes[outcome.host.name.rawValue] = outcome.status.rawValue }
      append(
        HostRecord(
          run: runID, time: Date(), block: block, host: outcome.host.name.rawValue, group: outcome.host.group.rawValue,
          status: outcome.status.rawValue, message: outcome.message, reason: outcome.reason?.rawValue))
    case .runFinished(let outcomes, _, let error, _, _):
      state.withLock { state in
        state.failure = error
        for outcome in outcomes { state.outcomes[outcome.host.name.rawValue] = outcome.status.rawValue }
      }
    default:
      break
    }
  }

  /// Writes the run's record; `signal`: what stopped the run, if anything did.
  public func finish(exitStatus: Int32, signal: StopSignal? = nil) {
    let state = state.withLock { $0 }
    let environment = ProcessInfo.processInfo.environment
    let user = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? String(getuid())
    append(
      RunRecord(
        run: runID, started: state.started, finished: Date(), user: user, sudoUser: environment["SUDO_USER"],
        runbook: state.runbook, arguments: arguments, store: store, source: source, check: state.check, exitStatus: exitStatus,
        signal: signal?.name, error: state.failure, hosts: state.outcomes))
  }
}

/// Sends every event to several sinks, in order.
public struct MultiplexSink: EventSink {
  private let sinks: [any EventSink]
  public init(_ sinks: [any EventSink]) { self.sinks = sinks }
  public func emit(_ event: Event) {
    for sink in sinks { sink.emit(event) }
  }
}
