// A session: the interpreter fed one entry at a time (the REPL), where variables, defs, groups
// and settings live on from entry to entry and the transport's connections stay open between
// them. Each entry is one run for the sink (`runStarted` … `runFinished`). A default target
// (`:target @lab`) wraps an entry's bare actions in an `on` block.

import CFISyntax
import Runtime

/// One session of entries sharing their state.
public actor Session {
  private let executor: any StepExecutor
  private let sink: any EventSink
  private var options: RunOptions
  private var frame: Frame
  private var context: ResolverContext
  private var entries = 0
  /// Every file the session has read (entries, includes, targets), indexed by `FileID`.
  public private(set) var files: [SourceFile] = []

  /// What an entry's text gave.
  public enum Parsed: Sendable {
    /// The text stops inside a block, list or call: read another line and parse again.
    case incomplete
    /// Errors (syntax or static checks); nothing may run.
    case errors([Diagnostic])
    /// An entry ready to run, with warnings if any.
    case entry(Entry)
  }

  /// A parsed entry.
  public struct Entry: Sendable {
    /// The program to run, default target applied.
    public var program: Program
    public var warnings: [Diagnostic]
    /// The entry as runbook text, with the default target written out (for `:save`).
    public var runbookText: String
  }

  /// A default target: where bare actions run.
  public struct DefaultTarget: Sendable {
    /// As written after `on` (`host @lab`, `group lab`, `all`).
    public var text: String
    var target: Target
  }

  /// A session over `executor`; `options` gives the store, inventory and starting settings.
  public init(executor: any StepExecutor, sink: any EventSink, options: RunOptions) {
    self.executor = executor
    self.sink = sink
    self.options = options
    let interpreter = Interpreter(executor: executor, sink: sink, options: options, files: [])
    frame = interpreter.topFrame()
    context = ResolverContext(
      knownGroups: Set(options.store.groups()).union(options.inventory.groupNames.map(\.rawValue)), store: options.store,
      deliveries: false)
  }

  // MARK: - Reading entries

  /// Parses and checks an entry. With `target`, bare actions (and statements that need a
  /// host) run there; with `retarget` too, so do the entry's own `on` blocks, also those
  /// inside `if`/`for`/`try` (`:rerun` on the hosts that failed). The session's state does
  /// not change until the entry runs, except that its text is kept for messages. A file's
  /// text (`name` given: its path) is never incomplete.
  public func parse(_ text: String, name: String? = nil, target: DefaultTarget? = nil, retarget: Bool = false) -> Parsed {
    let loaded = Loader.load(text: Array(text.utf8), name: name ?? "<input \(entries + 1)>", after: files)
    if name == nil, Session.isIncomplete(loaded, text) { return .incomplete }
    entries += 1
    files = loaded.files
    // What this entry defines counts already (a def and its call in one entry).
    var learned = context
    _ = Resolver.check(loaded, context: &learned)
    var rewriter = EntryRewriter(
      target: target, retarget: retarget, functions: learned.functions,
      bodies: frame.functions.mapValues(\.body).merging(StatementWalk.defs(in: loaded.program.statements).mapValues(\.body)) { $1 })
    var runbook = loaded
    runbook.program.statements = loaded.program.statements.map { rewriter.topLevel($0) }
    // The parser's "must be inside an 'on' block" does not apply to what now is.
    let syntax = loaded.diagnostics.filter { diagnostic in
      let range = diagnostic.range
      return diagnostic.id != .actionOutsideOn
        || !rewriter.wrapped.contains { $0.file == range.file && $0.start <= range.start && range.end <= $0.end }
    }
    var extended = context
    let diagnostics = (syntax + rewriter.problems + Resolver.check(runbook, context: &extended)).sorted { $0.range < $1.range }
    if diagnostics.contains(where: { $0.severity == .error }) { return .errors(diagnostics) }
    let source = files[loaded.program.file.rawValue]
    return .entry(Entry(program: runbook.program, warnings: diagnostics, runbookText: rewriter.apply(to: source)))
  }

  /// Whether an entry's text stops inside a block, list or call of its own (not of a file it
  /// includes), or ends with a `\` line continuation.
  static func isIncomplete(_ loaded: LoadedRunbook, _ text: String) -> Bool {
    let errors = loaded.diagnostics.filter { $0.severity == .error }
    if !errors.isEmpty,
      errors.allSatisfy({ $0.id == .unexpectedEndOfInput && $0.range.file == loaded.program.file })
    {
      return true
    }
    var lastLine = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0).last ?? ""
    while lastLine.last?.isWhitespace == true { lastLine.removeLast() }
    let state = LineState(atEndOf: lastLine)
    return lastLine.hasSuffix("\\") && !state.inComment && state.openQuote == nil
  }

  /// Parses a target as written after `on` (`host @lab`, `group lab, office`, `all`).
  public func parseTarget(_ text: String) -> (DefaultTarget?, [Diagnostic]) {
    let loaded = Loader.load(text: Array("on \(text) < >".utf8), name: "<target>", after: files)
    files = loaded.files
    let errors = (loaded.diagnostics + Resolver.check(loaded, context: context)).filter { $0.severity == .error }
    guard errors.isEmpty, loaded.program.statements.count == 1,
      case .on(let target, _) = loaded.program.statements[0].kind
    else { return (nil, errors) }
    return (DefaultTarget(text: text, target: target), [])
  }

  // MARK: - Running

  /// Runs a parsed entry; what it binds, defines and sets stays for the next one (also when
  /// it fails or is interrupted half-way: what ran, ran).
  /// `name` is what the sink's `runStarted` calls the run (default `<input N>`); `sink`, when
  /// given, hears this run instead of the session's (one with the entry's audit log).
  public func run(_ program: Program, name: String? = nil, check: Bool, diff: Bool = false, sink: (any EventSink)? = nil) async -> RunResult {
    await executor.startNewRun()
    var entryOptions = options
    entryOptions.check = check
    entryOptions.diff = diff
    let interpreter = Interpreter(executor: executor, sink: sink ?? self.sink, options: entryOptions, files: files)
    var frame = self.frame
    let result = await interpreter.run(program, name: name ?? "<input \(entries)>", in: &frame, shutdown: false)
    self.frame = frame
    var extended = context
    _ = Resolver.check(LoadedRunbook(files: files, program: program, diagnostics: []), context: &extended)
    context = extended
    context.globals.formUnion(frame.globals.keys)
    return result
  }

  // MARK: - What the session knows

  /// The settings in force.
  public var settings: RunSettings { frame.top!.settings }

  /// The inventory with the session's own groups.
  public var inventory: Inventory { frame.top!.inventory }

  /// Variables bound so far (`args` included), by name.
  public var variables: [String: Value] { frame.globals }

  /// Defs so far: name and parameter names.
  public var functions: [String: [String]] { frame.functions.mapValues { $0.parameters.map(\.name) } }

  /// Takes a fresh inventory (after discovery), keeping the groups the session defined. A
  /// browse that fed the session (`RunOptions.discovery`) feeds it no more.
  public func replaceInventory(_ inventory: Inventory) {
    var merged = inventory
    let current = frame.top!.inventory
    for name in current.groupNames where !inventory.groupNames.contains(name) {
      merged.addToGroup(name, names: current.hosts(inGroup: name).map(\.name))
    }
    frame.top!.inventory = merged
    options.inventory = merged
    options.discovery = nil
    context.knownGroups.formUnion(merged.groupNames.map(\.rawValue))
  }
}
