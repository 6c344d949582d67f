// Running one runbook: read it, check it, wire the fleet, run it, render, pick the exit status.

import ArgumentParser
import CFIScript
import CFISyntax
import Foundation
import Runtime

/// Does what `cfi-sh [OPTIONS] RUNBOOK` asks, or runs a delivery (`cfi-sh watch`).
struct RunbookRunner {
  let options: CFISh
  /// A delivery to run instead of the runbook the command line names: the runbook as it was
  /// recorded, limited to these hosts, recording no new delivery.
  var delivery: (runbook: DeliveryRunbook, hosts: [HostName])? = nil
  /// Where the run's events go instead of the terminal (`cfi-sh watch` logs its own lines).
  var sink: (any EventSink)? = nil
  /// The store's state database when the caller has it open (`cfi-sh watch`): the run uses
  /// it rather than opening another.
  var state: StateDatabase? = nil

  /// How a run ended, for a caller that needs more than the exit status.
  struct Finished {
    var exitStatus: Int32
    /// The run's id; nil when it did not start (a wrong runbook, a lock not had).
    var run: String? = nil
    /// Per host that took part: its worst status.
    var outcomes: [HostOutcome] = []
    /// Why it did not run, when it did not.
    var failure: String? = nil
  }

  /// Runs and returns the exit status.
  func run() async throws -> Int32 {
    try await runReporting().exitStatus
  }

  /// Runs; a failure that stops the command is said on stderr and ends as its status.
  func runReporting() async throws -> Finished {
    do {
      return try await runChecked()
    } catch let failure as CommandFailure {
      Stream.standardError.write("cfi-sh: \(failure.message)\n")
      return Finished(exitStatus: failure.status, failure: failure.message)
    }
  }

  private func runChecked() async throws -> Finished {
    let (runbook, name, arguments, text) = try delivery.map { try Self.loadDelivery($0.runbook) } ?? load()
    // The audit log keeps the text of a runbook that has no file (hashes redacted as CFIScript).
    let source = text.map { SecretText.redactingHashes(String($0.prefix(64 << 10))) }
    // The run history keeps the text of a runbook file too (as it ran; includes not).
    let fileText = text == nil ? runbook.files.first.map { SecretText.redactingHashes(String(decoding: $0.bytes.prefix(64 << 10), as: UTF8.self)) } : nil
    let fleet = options.makeFleetRun(
      audit: options.auditPolicy(required: true), state: state,
      notice: { [verbose = options.verbose] message in
        if verbose { Stream.standardError.write("cfi-sh: \(message)\n") }
      })
    // A run starts on the hosts it knows while avahi is still browsed, and the hosts the browse
    // finds join it (`LiveInventory`); `-n` and a `--limit` that names a group need the whole
    // inventory first (a group's members must all be known before the limit can exclude them).
    let live: LiveInventory
    let verbose = options.verbose
    do {
      live = try await fleet.liveInventory(
        discovery: !runbook.program.turnsDiscoveryOff, whole: options.syntaxCheck || RunLimit.namesAGroup(options.limit)
      ) { snapshot in
        if !verbose { Self.tellDiscovery(snapshot) }
      }
    } catch {
      throw CommandFailure(error)
    }
    defer { live.stop() }
    let inventory = live.view.inventory
    // With -n, the inventory is checked against too: warnings about literal host names no
    // source knows, and store files only some of a block's groups have.
    let context = ResolverContext(
      knownGroups: Set(fleet.store.groups()).union(inventory.groupNames.map(\.rawValue)), store: fleet.store,
      inventory: options.syntaxCheck ? inventory : nil)
    let diagnostics = (runbook.diagnostics + Resolver.check(runbook, context: context)).sorted { $0.range < $1.range }
    let diagnosticRenderer = DiagnosticRenderer(files: runbook.files, colors: Style.forStream(.standardError).enabled)
    // With --json, diagnostics go to standard output as JSON with the events (and their
    // count, also when there are none under -n); otherwise as text to standard error.
    if options.json, options.syntaxCheck || !diagnostics.isEmpty {
      Stream.standardOutput.write(DiagnosticJSON.render(diagnostics, files: runbook.files))
    } else if !diagnostics.isEmpty {
      Stream.standardError.write(diagnosticRenderer.render(diagnostics))
    }
    let errors = diagnostics.filter { $0.severity == .error }.count
    if errors > 0 {
      Stream.standardError.write("\(errors) error\(errors == 1 ? "" : "s"); nothing was run\n")
      return Finished(exitStatus: ExitStatus.runbookError, failure: "\(errors) error\(errors == 1 ? "" : "s") in the runbook")
    }
    if options.syntaxCheck { return Finished(exitStatus: ExitStatus.success) }

    let (settings, locked) = try options.commandLineSettings()
    let runOptions = RunOptions(
      store: fleet.store, inventory: inventory, settings: settings, lockedSettings: locked, check: options.check, diff: options.diff,
      arguments: arguments,
      limit: try delivery.map { RunLimit(included: Set($0.hosts), text: HostFolding.foldedString($0.hosts)) }
        ?? options.runLimit(inventory: inventory, runbook: name, source: source),
      discovery: live)
    let terminal: any EventSink =
      options.json
      ? JSONRenderer()
      : TextRenderer(
        verbosity: options.quiet ? .quiet : options.verbose ? .verbose : .normal,
        style: Style.forStream(.standardOutput), progress: Stream.standardError.isTerminal)
    let renderer: any EventSink
    if let sink {
      renderer = sink
    } else if let directory = options.outputDir {
      do { renderer = MultiplexSink([terminal, try OutputDirectory(root: directory)]) } catch {
        throw CommandFailure(message: "--output-dir \(directory): \(error.localizedDescription)", status: ExitStatus.usage)
      }
    } else {
      renderer = terminal
    }
    // Two runs on one store (two cron jobs) must not work on the same hosts at once; a dry run
    // changes nothing and takes no lock.
    let store = fleet.store
    let lockWait = try options.lockWaitLimit()
    let lock: FleetRun.LockPolicy =
      options.check
      ? .none
      : options.noWait
        ? .noWait
        : .wait(limit: lockWait) { holder in
          let most = lockWait.map { ", at most \($0.cfiText)" } ?? ""
          Stream.standardError.write(
            "cfi-sh: waiting for another run on \(store.root) (\(holder?.description ?? "pid ?")) to finish\(most)\n")
        }
    // From here, SIGINT, SIGTERM, SIGHUP and a broken stdout stop the run in order (before
    // it starts, they end the process at once: nothing is open yet).
    let signals = StopSignals.shared
    signals.start()
    let plan = try deliveryPlan(runbook, name: name, arguments: arguments)
    let run: (result: RunResult, exitStatus: Int32, id: String)
    do {
      run = try await fleet.run(
        arguments: arguments, source: source, text: fileText, lock: lock, delivery: plan, sink: renderer
      ) { sink in
        signals.starting()
        let task = Task {
          await Interpreter.run(runbook, name: name, executor: fleet.executor, sink: sink, options: runOptions)
        }
        signals.running(task)
        let result = await task.value
        var end = result.end
        end.stopSignal = signals.ran()
        return (result, end)
      }
    } catch {
      let advice = options.noWait ? "not waiting (--no-wait)" : "gave up after waiting \(lockWait?.cfiText ?? "") (--lock-wait)"
      throw CommandFailure(error, whenLocked: advice)
    }
    if let error = run.result.error {
      Stream.standardError.write(diagnosticRenderer.render(error))
    }
    // A signal after the run's end (while its record was written) still says how cfi-sh ended.
    return Finished(exitStatus: signals.received?.exitStatus ?? run.exitStatus, run: run.id, outcomes: run.result.outcomes)
  }

  /// Says (without -v, which said it already) that a run relying on discovery has none
  /// (avahi-daemon not running: otherwise a cron run finds fewer hosts, silently), and which
  /// announced hosts are not reached until the admin decides.
  private static func tellDiscovery(_ snapshot: InventorySnapshot) {
    if let failure = snapshot.discoveryFailure {
      Stream.standardError.write("cfi-sh: no discovery: \(failure)\n")
    }
    if let pending = snapshot.pendingNotice {
      Stream.standardError.write("cfi-sh: \(pending)\n")
    }
  }

  /// What a run that delivers records for the hosts it finds unreachable: the runbook as
  /// loaded now, its arguments, the options that shape a run. Nil for a delivery itself (it
  /// records nothing new) and for a dry run.
  private func deliveryPlan(_ runbook: LoadedRunbook, name: String, arguments: [String]) throws -> DeliveryPlan? {
    guard delivery == nil, !options.check else { return nil }
    let files = runbook.files.map { DeliveryRunbook.File(name: $0.path, text: String(decoding: $0.bytes, as: UTF8.self)) }
    // Counted from when the deliveries are recorded, at the run's end.
    let expiresAfter = try options.expire.map { try parseDuration($0, option: "--expire") }
    return DeliveryPlan(
      runbook: DeliveryRunbook(name: name, files: files, arguments: arguments, options: options.runShapingOptions),
      expiresAfter: expiresAfter, always: options.deliver)
  }

  /// Loads a recorded delivery's runbook from its stored texts (includes too: they are
  /// looked up by the names the loader gave them when it ran, never read from disk).
  static func loadDelivery(_ recorded: DeliveryRunbook) throws -> (LoadedRunbook, String, [String], String?) {
    guard let main = recorded.files.first else {
      throw CommandFailure(message: "the delivery of \(recorded.name) holds no runbook text", status: ExitStatus.runbookError)
    }
    let texts = Dictionary(recorded.files.map { ($0.name, $0.text) }, uniquingKeysWith: { first, _ in first })
    let read: Loader.ReadFile = { path in
      guard let text = texts[path] ?? texts[Loader.displayPath(path)] else { throw POSIXError(.ENOENT) }
      return FileContents(bytes: Array(text.utf8), identity: FileIdentity(name: path))
    }
    let loaded = Loader.load(text: Array(main.text.utf8), name: main.name, readFile: read)
    // A runbook without a file keeps its text in the audit record, as when it first ran.
    let text = recorded.name.hasPrefix("<") ? main.text : nil
    return (loaded, recorded.name, recorded.arguments, text)
  }

  /// Reads the runbook from `-c`, a file, or standard input.
  /// The runbook, its name, its arguments, and its text when it has no file (`-c`, stdin).
  private func load() throws -> (LoadedRunbook, String, [String], String?) {
    // What follows the runbook is the runbook's, so an option of ours there would be
    // silently ignored: refused before anything is read or run. (With -c, the first word is
    // in `runbook`; it can only look like an option when a `--` came before it.) A `--`
    // before the runbook, which the parser takes, makes every later word the runbook's.
    let raw = CommandLine.arguments.dropFirst()
    let separated = raw.dropLast(options.arguments.count).contains("--")
    if !separated, let option = CFISh.ownOption(in: options.arguments) {
      let runbook = options.command != nil ? "-c TEXT" : options.runbook ?? "-"
      let cfiSh = options.deliver ? "cfi-sh --deliver" : "cfi-sh"
      throw CommandFailure(
        message: "'\(option)' after the runbook is an option of cfi-sh, and what follows the runbook is the runbook's; "
          + "options go before it (\(cfiSh) \(option) \(runbook)); "
          + "to pass '\(option)' to the runbook, write: \(cfiSh) \(runbook) -- \(option)",
        status: ExitStatus.usage)
    }
    let arguments =
      (options.command != nil ? options.runbook.map { [$0] } ?? [] : [])
      + (separated ? options.arguments : CFISh.runbookArguments(options.arguments))
    if let text = options.command {
      return (Loader.load(text: Array(text.utf8), name: "<command line>"), "<command line>", arguments, text)
    }
    let path = options.runbook ?? (Stream.standardError.isTerminal && isatty(0) == 1 ? nil : "-")
    guard let path else {
      throw CommandFailure(
        message: "no runbook given (try 'cfi-sh RUNBOOK', 'cfi-sh -c TEXT' or 'cfi-sh --help')", status: ExitStatus.usage)
    }
    if path == "-" {
      let bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
      return (Loader.load(text: bytes, name: "<stdin>"), "<stdin>", arguments, String(decoding: bytes, as: UTF8.self))
    }
    do {
      return (try Loader.load(path: path), path, arguments, nil)
    } catch {
      throw CommandFailure(message: "cannot read runbook '\(path)': \(Loader.reason(error))", status: ExitStatus.usage)
    }
  }
}
