// Actions: from an ActionStatement to a Runtime.Action performed on the frame's host.

import CFISyntax
import Runtime

extension Interpreter {
  /// Builds the typed action from the evaluated arguments.
  func buildAction(_ action: ActionStatement, in frame: Frame) throws -> Action {
    let values = try action.arguments.map { try evaluate($0, in: frame) }
    func single(_ index: Int, _ what: String) throws -> String {
      try text(values[index], "the \(what) of '\(action.kind.rawValue)'", at: action.arguments[index].range)
    }
    func spread(from index: Int) throws -> [String] {
      try values[index...].enumerated().flatMap { offset, value in
        try value.flattened.map { try text($0, "an argument", at: action.arguments[index + offset].range) }
      }
    }
    switch action.kind {
    case .copy:
      let destination = try action.destination.map { try text(evaluate($0, in: frame), "the destination of 'copy'", at: $0.range) }
      return .copy(path: try single(0, "path"), destination: destination)
    case .sync: return .sync
    case .run: return .run(command: try single(0, "command"))
    case .script: return .script(path: try single(0, "file"), arguments: try spread(from: 1))
    case .password: return .password(user: try single(0, "user"), hash: Secret(try single(1, "hash")))
    case .install: return .install(packages: try spread(from: 0))
    case .remove: return .remove(packages: try spread(from: 0))
    case .upgrade: return action.word == nil ? .upgrade : .fullUpgrade
    case .pkgsync: return .pkgsync
    case .service:
      guard let word = action.word, let state = ServiceState(rawValue: word.name) else {
        throw RuntimeError("'service' needs a state", at: action.keyword)
      }
      return .service(unit: try single(0, "unit"), state: state)
    case .fetch: return .fetch(path: try single(0, "path"))
    case .reboot: return .reboot(onlyIfNeeded: action.ifNeeded != nil)
    }
  }

  /// How a step is named in output and logs: the action in canonical CFIScript, unevaluated
  /// (the same on every host, so results group), with the hash of `password` redacted, and any
  /// hash written inside a string of it (`run 'echo \'user:$6$…\''`).
  func label(of statement: ActionStatement) -> String {
    SecretText.redactingHashes(ScriptPrinter.action(statement, redacting: Secret.redacted))
  }

  /// Performs an action on the frame's host and reports it; a failure ends the host's block,
  /// unless the action is `tolerated` (`let r = try ACTION`): then its result is returned.
  func perform(_ statement: ActionStatement, in frame: inout Frame) async throws -> StepResult {
    guard let host = frame.host else {
      throw RuntimeError("'\(statement.kind.rawValue)' must run inside an 'on' block", at: statement.keyword)
    }
    let action = try buildAction(statement, in: frame)
    let step = StepInfo(
      block: frame.block, location: location(statement.range), label: label(of: statement),
      tolerated: frame.insideTry || statement.tolerated)
    sink.emit(.stepStarted(step, host: host))
    let stepOptions = StepOptions(
      check: options.check, diff: options.diff, timeout: frame.settings.timeout,
      connectTimeout: frame.settings.connectTimeout, rebootTimeout: frame.settings.rebootTimeout)
    let result = await executor.perform(action, on: host, options: stepOptions)
    sink.emit(.stepFinished(step, host: host, result: result))
    switch result.status {
    case .ok, .skipped:
      break
    case .changed:
      frame.changed = true
    case .failed where statement.tolerated:
      break
    case .failed:
      let reason = result.message ?? result.exitCode.map { "exit status \($0)" } ?? "failed"
      throw HostStop.failed("\(step.location): \(statement.kind.rawValue): \(reason)")
    case .unreachable:
      throw HostStop.unreachable(Unreachable(result.reason ?? .other, result.message ?? "unreachable"))
    case .interrupted:
      throw HostStop.interrupted
    }
    return result
  }
}
