// Running one runbook: read it, check it, wire the fleet, run it, render, pick the exit status.

import ArgumentParser
import CFIScript
import CFISyntax
import Foundation
import Runtime

/// An error that ends the command with a message and a status (no usage text).
struct CommandFailure: Error {
  var message: String
  var status: Int32
}

/// Does what `cfi-sh [OPTIONS] RUNBOOK` asks.
struct RunbookRunner {
  let options: CFISh

  /// Runs and returns the exit status.
  func run() async throws -> Int32 {
    do {
      return try await runChecked()
    } catch let failure as CommandFailure {
      Stream.standardError.write("cfi-sh: \(failure.message)\n")
      return failure.status
    }
  }

  private func runChecked() async throws -> Int32 {
    let (runbook, name, arguments) = try load()
    let store = Store(root: options.storeRoot)
    let inventory = try await loadInventory(store: store, runbook: runbook)
    let context = ResolverContext(
      knownGroups: Set(store.groups()).union(inventory.groupNames), store: store)
    let diagnostics = (runbook.diagnostics + Resolver.check(runbook, context: context)).sorted { $0.range < $1.range }
    let diagnosticRenderer = DiagnosticRenderer(files: runbook.files, colors: Style.forStream(.standardError).enabled)
    if !diagnostics.isEmpty {
      Stream.standardError.write(diagnosticRenderer.render(diagnostics))
    }
    let errors = diagnostics.filter { $0.severity == .error }.count
    if errors > 0 {
      Stream.standardError.write("\(errors) error\(errors == 1 ? "" : "s"); nothing was run\n")
      return ExitStatus.runbookError
    }
    if options.syntaxCheck { return ExitStatus.success }

    let (settings, locked) = try options.commandLineSettings()
    let runOptions = RunOptions(
      store: store, inventory: inventory, settings: settings, lockedSettings: locked, check: options.check,
      arguments: arguments)
    let renderer: any EventSink =
      options.json
      ? JSONRenderer()
      : TextRenderer(
        verbosity: options.quiet ? .quiet : options.verbose ? .verbose : .normal,
        style: Style.forStream(.standardOutput), progress: Stream.standardError.isTerminal)
    let audit = try openAuditLog(arguments: arguments)
    let transport = makeTransport(store: store, identity: options.identityFile, sshConfig: options.sshConfigFile)
    // Two runs on one store (two cron jobs) must not work on the same hosts at once.
    let lock = try takeLock(store)

    var sinks: [any EventSink] = [renderer]
    if let audit { sinks.append(audit) }
    let sink = MultiplexSink(sinks)
    let task = Task {
      await Interpreter.run(runbook, name: name, transport: transport, sink: sink, options: runOptions)
    }
    let interrupts = InterruptRouter(pressesToQuit: 2)
    interrupts.start()
    interrupts.running(task)
    let result = await task.value
    interrupts.stop()
    if let error = result.error {
      Stream.standardError.write(diagnosticRenderer.render(error))
    }
    let reached: [Runtime.Host] = result.outcomes.compactMap { outcome in
      [.ok, .changed, .failed].contains(outcome.status) ? outcome.host : nil
    }
    try? KnownClients(store: store).remember(reached)
    let status = ExitStatus.of(outcomes: result.outcomes, runtimeError: result.error != nil, interrupted: result.interrupted)
    audit?.finish(exitStatus: status)
    withExtendedLifetime(lock) {}
    return status
  }

  /// Takes the store's lock (not for dry runs, which change nothing).
  private func takeLock(_ store: Store) throws -> StoreLock? {
    guard !options.check else { return nil }
    do {
      return try StoreLock(store: store, wait: !options.noWait) { holder in
        Stream.standardError.write("cfi-sh: waiting for another run on \(store.root) (pid \(holder ?? "?")) to finish\n")
      }
    } catch .busy(let holder) {
      throw CommandFailure(
        message: "another run holds the lock of \(store.root) (pid \(holder ?? "?")); not waiting (--no-wait)",
        status: ExitStatus.locked)
    } catch .cannotOpen(let message) {
      throw CommandFailure(message: message, status: ExitStatus.usage)
    }
  }

  /// The audit log (`--audit-log`, default /var/log/cfi/audit.log; `none` turns it off).
  private func openAuditLog(arguments: [String]) throws -> AuditLog? {
    let path = options.auditLogPath
    guard path != "none", !options.syntaxCheck else { return nil }
    do { return try AuditLog(path: path, arguments: arguments) } catch {
      throw CommandFailure(message: "cannot open the audit log '\(path)': \(Loader.reason(error))", status: ExitStatus.usage)
    }
  }


  /// Reads the runbook from `-c`, a file, or standard input.
  private func load() throws -> (LoadedRunbook, String, [String]) {
    if let text = options.command {
      let arguments = (options.runbook.map { [$0] } ?? []) + options.arguments
      return (Loader.load(text: Array(text.utf8), name: "<command line>"), "<command line>", arguments)
    }
    let path = options.runbook ?? (Stream.standardError.isTerminal && isatty(0) == 1 ? nil : "-")
    guard let path else {
      throw CommandFailure(
        message: "no runbook given (try 'cfi-sh RUNBOOK', 'cfi-sh -c TEXT' or 'cfi-sh --help')", status: ExitStatus.usage)
    }
    let arguments = options.arguments.first == "--" ? Array(options.arguments.dropFirst()) : options.arguments
    if path == "-" {
      let bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
      return (Loader.load(text: bytes, name: "<stdin>"), "<stdin>", arguments)
    }
    do {
      return (try Loader.load(path: path), path, arguments)
    } catch {
      throw CommandFailure(message: "cannot read runbook '\(path)': \(Loader.reason(error))", status: ExitStatus.usage)
    }
  }

  /// The merged inventory (see InventorySources); discovery unless `--no-discovery` or the
  /// runbook says `set discovery = off` at its top level.
  private func loadInventory(store: Store, runbook: LoadedRunbook) async throws -> Inventory {
    let sources = InventorySources(
      store: store, clientList: options.clientList, dshDirectory: options.dshGroupDirectory,
      discovery: !options.noDiscovery && !runbook.program.turnsDiscoveryOff)
    let verbose = options.verbose
    return try await sources.load { message in
      if verbose { Stream.standardError.write("cfi-sh: \(message)\n") }
    }.0
  }
}
