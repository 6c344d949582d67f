// The interpreter: walks the tree, keeps scopes, and turns actions into Runtime calls.
// Statements outside `on` run once, on the server; an `on` block fans out, running its body
// once per target host as its own sequential thread with its own scope. It reports through
// an EventSink and never prints; it knows nothing of ssh.

import CFISyntax
import Foundation
import Runtime
import Synchronization

/// The language's expressions, not Foundation's predicate `Expression`, which the import of
/// Foundation would otherwise make ambiguous here.
typealias Expression = CFISyntax.Expression

/// What a run needs besides the program.
public struct RunOptions: Sendable {
  public var store: Store
  public var inventory: Inventory
  /// Settings at the start (defaults, or the command line's).
  public var settings: RunSettings
  /// Settings given on the command line; `set` in the runbook does not override these.
  public var lockedSettings: Set<String>
  /// Dry run.
  public var check: Bool
  /// Show what changes (`StepResult.diff`), with `check` what would.
  public var diff: Bool
  /// The runbook's arguments (`args`).
  public var arguments: [String]
  /// The environment `env()` reads.
  public var environment: [String: String]
  /// This server's names and addresses: `on all`, groups and patterns leave it out.
  public var server: ServerIdentity
  /// `--limit`: every block reaches only the hosts it allows.
  public var limit: RunLimit?
  /// The browse going on while the run starts, whose findings join the blocks (`inventory`
  /// is then its first view); nil: `inventory` is all there is.
  public var discovery: LiveInventory?

  public init(
    store: Store = Store(), inventory: Inventory = Inventory(), settings: RunSettings = RunSettings(),
    lockedSettings: Set<String> = [], check: Bool = false, diff: Bool = false, arguments: [String] = [],
    environment: [String: String] = ProcessInfo.processInfo.environment, server: ServerIdentity = .current(),
    limit: RunLimit? = nil, discovery: LiveInventory? = nil
  ) {
    self.discovery = discovery
    self.server = server
    self.limit = limit
    self.store = store
    self.inventory = inventory
    self.settings = settings
    self.lockedSettings = lockedSettings
    self.check = check
    self.diff = diff
    self.arguments = arguments
    self.environment = environment
  }
}

/// How a run ended.
public struct RunResult: Sendable {
  /// Per host that took part: its worst status over all blocks.
  public var outcomes: [HostOutcome]
  /// The runtime error that stopped the run on the server, if any.
  public var error: Diagnostic?
  /// Whether the run was interrupted.
  public var interrupted: Bool
  /// Whether `max_fail` stopped the run.
  public var stoppedByMaxFail: Bool
  /// How many `on` blocks ran whose target matched no host.
  public var unmatchedTargets: Int
  /// Whether `set deliver = until_done` was in force when the run ended.
  public var deliver = false

  /// How the run ended, as the fleet (Runtime's `FleetRun`) sees it.
  public var end: RunEnd {
    var end = RunEnd(outcomes: outcomes, runtimeError: error != nil, interrupted: interrupted, unmatchedTargets: unmatchedTargets)
    end.deliver = deliver
    return end
  }
}

/// A user-defined function.
struct Function: Sendable {
  var parameters: [Identifier]
  var body: Block
}

/// The mutable state of the server-side thread (outside `on`).
struct TopLevelState {
  var settings: RunSettings
  var inventory: Inventory
  /// The `LiveInventory` view `inventory` comes from (`RunOptions.discovery`).
  var inventoryVersion = 0
  /// The runbook's `group` statements so far, added again to each newer view.
  var declaredGroups: [(group: GroupName, names: [HostName])] = []
  var blockCount = 0
  var outcomes: [HostName: HostOutcome] = [:]
  var hostOrder: [HostName] = []
  var stoppedByMaxFail = false
  var unmatchedTargets = 0
  /// `set deliver`: a setting of the whole run, not of the blocks after it.
  var deliver = false
  /// The block after which a runbook run sends nothing more to any host (`finalBlock(in:)`).
  var finalBlock: SourceRange?
}

/// One thread of execution: the server's (with `top`) or a host's (with `host`).
struct Frame {
  var globals: [String: Value]
  /// nil in the server's thread, where `let` writes globals.
  var locals: [String: Value]?
  var functions: [String: Function]
  var host: Runtime.Host?
  var top: TopLevelState?
  /// Settings in force (a host thread's copy of the block's).
  var settings: RunSettings
  var block = 0
  var changed = false
  var insideTry = false
  var callDepth = 0

  func lookup(_ name: String) -> Value? {
    if let value = locals?[name] ?? globals[name] { return value }
    if name == "host", let host { return .host(host) }
    return nil
  }

  mutating func assign(_ name: String, _ value: Value) {
    if locals != nil { locals![name] = value } else { globals[name] = value }
  }
}

/// Runs programs. One interpreter serves one run (or one REPL session, statement by statement).
public struct Interpreter: Sendable {
  /// How deep `def` calls may nest; why: a tree-walker recurses per call, and a runaway
  /// recursion must end in an error, not a stack overflow.
  public static let maxCallDepth = 100

  let executor: any StepExecutor
  let sink: any EventSink
  let options: RunOptions
  let files: [SourceFile]

  /// An interpreter for a loaded runbook.
  public init(executor: any StepExecutor, sink: any EventSink, options: RunOptions, files: [SourceFile]) {
    self.executor = executor
    self.sink = sink
    self.options = options
    self.files = files
  }

  /// Runs the whole program and shuts the executor down. Emits `runStarted`/`runFinished`.
  public static func run(
    _ runbook: LoadedRunbook, name: String, executor: any StepExecutor, sink: any EventSink, options: RunOptions
  ) async -> RunResult {
    let interpreter = Interpreter(executor: executor, sink: sink, options: options, files: runbook.files)
    var frame = interpreter.topFrame()
    return await interpreter.run(runbook.program, name: name, in: &frame, shutdown: true)
  }

  /// Runs `program` in `frame` (a fresh one, or a session's that lives on), as one run:
  /// `runStarted`, the statements, `runFinished` with the hosts this run touched. With
  /// `shutdown`, the executor's connections are closed before the run is reported finished.
  func run(_ program: Program, name: String, in frame: inout Frame, shutdown: Bool) async -> RunResult {
    sink.emit(.runStarted(runbook: name, check: options.check, date: Date()))
    frame.top!.outcomes = [:]
    frame.top!.hostOrder = []
    frame.top!.stoppedByMaxFail = false
    frame.top!.unmatchedTargets = 0
    declareFunctions(program.statements, in: &frame)
    // A session's entry is followed by the next one: only a runbook run ends with its program.
    frame.top!.finalBlock = shutdown ? Self.finalBlock(in: program.statements) : nil
    await executor.keepConnections(for: frame.settings.persist)
    var error: Diagnostic?
    var interrupted = false
    do {
      try await execute(program.statements, in: &frame)
    } catch let runtimeError as RuntimeError {
      error = runtimeError.diagnostic
    } catch {
      interrupted = true
    }
    if Task.isCancelled { interrupted = true }
    if shutdown { await executor.shutdown() }
    let top = frame.top!
    let outcomes = top.hostOrder.compactMap { top.outcomes[$0] }
    let message = error.map { describe($0) }
    sink.emit(.runFinished(outcomes: outcomes, interrupted: interrupted, error: message))
    return RunResult(
      outcomes: outcomes, error: error, interrupted: interrupted, stoppedByMaxFail: top.stoppedByMaxFail,
      unmatchedTargets: top.unmatchedTargets, deliver: top.deliver)
  }

  /// The `on` statement after which a runbook sends nothing more to any host: its last
  /// top-level one, followed only by statements that run on the server alone (`let` of an
  /// expression, `print`, `fail`, `def`). Each of its hosts is released (`StepExecutor.release`)
  /// once done with it, so that a run over hundreds of hosts does not keep a connection to
  /// each until the last one is done. Nil when there is none; a last block inside `if`,
  /// `for`, a def or an include is not looked for (its hosts are released at the run's end).
  static func finalBlock(in statements: [Statement]) -> SourceRange? {
    for statement in statements.reversed() {
      switch statement.kind {
      case .on: return statement.range
      case .let, .print, .fail, .def: continue
      default: return nil
      }
    }
    return nil
  }

  /// The server thread's frame at the start of a run.
  func topFrame() -> Frame {
    Frame(
      globals: ["args": .list(options.arguments.map(Value.string))], locals: nil, functions: [:], host: nil,
      top: TopLevelState(settings: options.settings, inventory: options.inventory), settings: options.settings)
  }

  /// Registers the program's defs (those of includes too) before it runs; why: the resolver
  /// knows defs program-wide, so a call may come before the def's text. Running a `def`
  /// statement registers it again, so a redefinition takes over from there on.
  func declareFunctions(_ statements: [Statement], in frame: inout Frame) {
    for (name, def) in StatementWalk.defs(in: statements) {
      frame.functions[name] = Function(parameters: def.parameters, body: def.body)
    }
  }

  /// `file:line:column: message` for a diagnostic.
  func describe(_ diagnostic: Diagnostic) -> String {
    "\(location(diagnostic.range)): \(diagnostic.message)"
  }

  func location(_ range: SourceRange) -> String {
    guard range.file.rawValue < files.count else { return "?" }
    let file = files[range.file.rawValue]
    return "\(file.path):\(file.lineColumn(of: range.start))"
  }

  // MARK: - Statements

  func execute(_ statements: [Statement], in frame: inout Frame) async throws {
    for statement in statements {
      try Task.checkCancellation()
      if frame.top?.stoppedByMaxFail == true { return }
      try await execute(statement, in: &frame)
    }
  }

  func execute(_ statement: Statement, in frame: inout Frame) async throws {
    switch statement.kind {
    case .let(let name, let value):
      frame.assign(name.name, try evaluate(value, in: frame))
    case .letAction(let name, let action):
      let result = try await perform(action, in: &frame)
      frame.assign(name.name, .result(ActionResult(result)))
    case .group(let name, let items):
      // Reachable through a def called inside `on`; the parser rejects it written there.
      guard frame.top != nil else { throw RuntimeError("'group' cannot run inside an 'on' block", at: statement.range) }
      // The resolver refuses a bad name before the run; this is the boundary of the type.
      let group: GroupName
      do throws(GroupNameError) { group = try GroupName(parsing: name.name) } catch {
        throw RuntimeError(error.description, at: name.range)
      }
      try await completeInventory(before: items, in: &frame)
      let names = try hostNames(items, in: frame)
      frame.top?.inventory.addToGroup(group, names: names)
      frame.top?.declaredGroups.append((group, names))
    case .on(let target, let body):
      try await runBlock(target, body, statement: statement, in: &frame)
    case .action(let action):
      _ = try await perform(action, in: &frame)
    case .if(let condition, let then, let otherwise):
      if try truth(condition, in: frame, what: "'if'") {
        try await execute(then.statements, in: &frame)
      } else if let otherwise {
        try await execute(otherwise.statements, in: &frame)
      }
    case .for(let name, let sequence, let body):
      let value = try evaluate(sequence, in: frame)
      guard case .list(let elements) = value else {
        throw RuntimeError("'for' needs a list to walk, not \(value.typeName)", at: sequence.range)
      }
      for element in elements {
        frame.assign(name.name, element)
        try await execute(body.statements, in: &frame)
      }
    case .def(let name, let parameters, let body):
      frame.functions[name.name] = Function(parameters: parameters, body: body)
    case .call(let name, let arguments):
      try await call(name, arguments, in: &frame)
    case .include(_, _, let program):
      if let program { try await execute(program.statements, in: &frame) }
    case .try(let body):
      let wasInsideTry = frame.insideTry
      frame.insideTry = true
      defer { frame.insideTry = wasInsideTry }
      do {
        try await execute(body.statements, in: &frame)
      } catch HostStop.failed {
        // Tolerated: the block just stops here.
      }
    case .set(let name, let value):
      guard frame.top != nil else { throw RuntimeError("'set' cannot run inside an 'on' block", at: statement.range) }
      try set(name, value, in: &frame)
      if name.name == Setting.persist.rawValue { await executor.keepConnections(for: frame.settings.persist) }
    case .print(let values):
      let text = try values.map { try evaluate($0, in: frame).text }.joined(separator: " ")
      sink.emit(.message(text, host: frame.host))
    case .fail(let message):
      let text = try message.map { try evaluate($0, in: frame).text } ?? "fail"
      if frame.host != nil { throw HostStop.failed("\(location(statement.range)): \(text)") }
      throw RuntimeError(text, at: statement.range)
    case .invalid:
      throw RuntimeError("this statement has errors", at: statement.range)
    }
  }

  private func set(_ name: Identifier, _ value: Expression, in frame: inout Frame) throws {
    guard let setting = Setting(rawValue: name.name) else {
      throw RuntimeError("unknown setting '\(name.name)'", at: name.range)
    }
    if setting == .deliver {
      guard let deliver = Setting.deliverMode(value) else {
        throw RuntimeError("'deliver' must be \(setting.expectation)", at: value.range)
      }
      frame.top?.deliver = deliver
      return
    }
    var settings = frame.settings
    let problem = value.isNoneWord ? settings.applyNone(setting) : settings.apply(setting, try evaluate(value, in: frame))
    if let problem { throw RuntimeError(problem, at: value.range) }
    // The command line's settings win over the runbook's.
    guard !options.lockedSettings.contains(setting.rawValue) else { return }
    frame.settings = settings
    frame.top?.settings = settings
  }

  private func call(_ name: Identifier, _ arguments: [Expression], in frame: inout Frame) async throws {
    guard let function = frame.functions[name.name] else {
      throw RuntimeError("unknown function '\(name.name)'", at: name.range)
    }
    guard function.parameters.count == arguments.count else {
      throw RuntimeError("'\(name.name)' takes \(function.parameters.count) arguments, found \(arguments.count)", at: name.range)
    }
    guard frame.callDepth < Interpreter.maxCallDepth else {
      throw RuntimeError("calls nest too deeply (more than \(Interpreter.maxCallDepth)); is '\(name.name)' recursive?", at: name.range)
    }
    var locals: [String: Value] = [:]
    for (parameter, argument) in zip(function.parameters, arguments) {
      locals[parameter.name] = try evaluate(argument, in: frame)
    }
    // A call gets a fresh local scope over the globals; it does not see the caller's locals.
    let savedLocals = frame.locals
    frame.locals = locals
    frame.callDepth += 1
    defer {
      frame.locals = savedLocals
      frame.callDepth -= 1
    }
    try await execute(function.body.statements, in: &frame)
  }
}
