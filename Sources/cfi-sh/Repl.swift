// The interactive shell: `cfi-sh` with no runbook on a terminal. Each entry (one line, or
// several while a `<` block is open) is parsed, checked and run in one Session, so variables,
// defs, groups, settings and ssh connections live on. Lines starting with `:` are
// meta-commands (ReplCommands.swift). Ctrl-C cancels the running entry, or clears the line
// at the prompt; Ctrl-D quits; SIGTERM, SIGHUP and a broken stdout end the session after
// stopping the running entry as Ctrl-C does (`StopSignals`).

import CFIScript
import CFISyntax
import Foundation
import Runtime
import Synchronization

/// The REPL's state between entries.
final class Repl {
  let options: CFISh
  let fleet: FleetRun
  var store: Store { fleet.store }
  let session: Session
  let editor: LineEditor
  let sink: TextRenderer
  let style: Style
  let vocabulary: SharedVocabulary
  /// The inventory of the session's start: the hosts known at once, and what the browse
  /// (going on in the background: the prompt does not wait for it) adds as it comes.
  let live: LiveInventory
  /// What `:discover` found last; nil: none yet (the start's browse says).
  var discovered: [InventoryEntry]?
  /// Whether the session's inventory has taken the start's browse whole (`followBrowse`).
  var browseFollowed = false
  /// Notices, held while the prompt is up.
  let notices: HeldNotices
  /// Where bare actions run (`:target`); nil: nowhere, they need an `on` block.
  var target: Session.DefaultTarget?
  var check: Bool
  /// Show what changes (`:diff`, `--diff`).
  var diff: Bool
  /// The last entry's text (for `:rerun`) and result (for `:last`, `:failed`, `:unreachable`).
  var lastText: String?
  var lastResult: RunResult?
  /// What `:save` writes: the entries that ran to their end, as runbook text.
  var saved: [String] = []

  /// The history file: ~/.cfi_history (CFI_HISTORY overrides; empty: none). `~` is `$HOME`
  /// as bash and readline take it, the password database's home only without one.
  static var historyFile: String? { historyFile(environment: ProcessInfo.processInfo.environment) }

  static func historyFile(environment: [String: String]) -> String? {
    if let path = environment["CFI_HISTORY"] { return path.isEmpty ? nil : path }
    let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    return home + "/.cfi_history"
  }

  static let historyLimit = 2000

  init(options: CFISh) async throws {
    self.options = options
    let notices = HeldNotices()
    self.notices = notices
    fleet = options.makeFleetRun(audit: options.auditPolicy(required: false)) { notices.say($0) }
    style = Style.forStream(.standardOutput)
    check = options.check
    diff = options.diff
    // As a runbook: the entries start on the hosts known while avahi is still browsed, and
    // the hosts it finds join them; a `--limit` naming a group needs the whole inventory first.
    do {
      live = try await fleet.liveInventory(whole: RunLimit.namesAGroup(options.limit))
    } catch {
      throw CommandFailure(error)
    }
    let snapshot = live.view.snapshot
    let (settings, locked) = try options.commandLineSettings()
    sink = TextRenderer(
      verbosity: options.quiet ? .quiet : options.verbose ? .verbose : .normal, style: style,
      progress: Stream.standardError.isTerminal)
    session = Session(
      executor: fleet.executor, sink: sink,
      options: RunOptions(
        store: fleet.store, inventory: snapshot.inventory, settings: settings, lockedSettings: locked, check: check,
        limit: try options.runLimit(inventory: snapshot.inventory, runbook: "<input>"), discovery: live))
    let vocabulary = SharedVocabulary(Vocabulary(storeRoot: fleet.store.root))
    self.vocabulary = vocabulary
    editor = LineEditor(historyFile: Repl.historyFile, historyLimit: Repl.historyLimit) { line, start, _, word in
      ReplCompletion.candidates(line: line, start: start, word: word, vocabulary: vocabulary.value.withLock { $0 })
    }
    await refreshVocabulary()
  }

  /// Runs until `:quit`, Ctrl-D or a signal that ends it; returns the exit status (0, or the
  /// signal's).
  func run() async -> Int32 {
    let signals = StopSignals.shared
    signals.start(editor: editor)
    Stream.standardOutput.write(
      "cfi-sh \(CFISh.version): \(entries.count) host\(entries.count == 1 ? "" : "s") known. :help lists the commands, Ctrl-D quits.\n")
    var buffer = ""
    loop: while signals.ending == nil {
      await followBrowse()
      let prompt = buffer.isEmpty ? self.prompt : String(repeating: " ", count: max(0, self.prompt.count - 4)) + "... "
      notices.hold()
      let input = await editor.read(prompt: prompt)
      notices.release()
      switch input {
      case .endOfInput:
        if !buffer.isEmpty { fail("the unfinished entry was dropped") }
        break loop
      case .interrupted:
        buffer = ""
        if signals.ending != nil { break loop }
      case .line(let line):
        addHistory(line)
        // A meta-command also works inside an unfinished entry: no statement starts with ':'.
        if line.trimmingCharacters(in: .whitespaces).hasPrefix(":") {
          if await command(line.trimmingCharacters(in: .whitespaces)) == .quit {
            if !buffer.isEmpty { fail("the unfinished entry was dropped") }
            break loop
          }
          continue
        }
        if buffer.isEmpty, line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
        buffer += line + "\n"
        if await enter(buffer) { buffer = "" }
      }
    }
    signals.finishing()
    live.stop()
    await fleet.shutdown()
    editor.close()
    return signals.ending?.exitStatus ?? ExitStatus.success
  }

  /// The hosts `:hosts` lists: as `:discover` found them last, else as the start's browse
  /// has so far.
  var entries: [InventoryEntry] { discovered ?? live.view.snapshot.entries }

  /// Once the start's browse is over, the session's inventory takes it whole, for what the
  /// meta-commands and completion show (an entry's blocks take what it found as they start,
  /// `RunOptions.discovery`); `:discover` replaces it later.
  private func followBrowse() async {
    guard !browseFollowed, live.view.stage == .complete else { return }
    browseFollowed = true
    await session.replaceInventory(live.view.inventory)
    await refreshVocabulary()
  }

  /// `cfi>`, `cfi lab>` with a default target, `cfi lab (check)>` in check mode, `(diff)` with :diff on.
  var prompt: String {
    var text = "cfi"
    if let target { text += " " + Repl.shortName(target.text) }
    if check { text += " (check)" }
    if diff { text += " (diff)" }
    return text + "> "
  }

  /// A target as the prompt shows it: `host @lab` → `lab`, `host pc[01-05]` → `pc[01-05]`.
  static func shortName(_ text: String) -> String {
    var name = text
    for prefix in ["host ", "hosts ", "group "] where name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
    return name.hasPrefix("@") ? String(name.dropFirst()) : name
  }

  /// Adds a line to the history with any password hash redacted.
  func addHistory(_ line: String) {
    editor.addHistory(SecretText.redactingHashes(line))
  }

  // MARK: - Entries

  /// Parses and runs an entry; false when it continues on the next line. `typed` entries
  /// are the ones `:rerun` repeats (not those a meta-command makes, like `:set`'s).
  func enter(_ text: String, retarget: Bool = false, typed: Bool = true) async -> Bool {
    switch await session.parse(text, target: target, retarget: retarget) {
    case .incomplete:
      return false
    case .errors(let diagnostics):
      await report(diagnostics)
      if target == nil, diagnostics.contains(where: { $0.id == .actionOutsideOn }) {
        Stream.standardError.write("hint: ':target @GROUP' (or a host pattern) makes bare actions run there\n")
      }
    case .entry(let entry):
      await report(entry.warnings)
      guard !entry.program.statements.isEmpty else { return true }  // a comment, a lone ';'
      // Rerun from the text as it ran (default target written out), so that it also runs
      // again after ':target none'.
      if typed { lastText = entry.runbookText }
      await run(entry.program, savedAs: entry.runbookText)
    }
    return true
  }

  /// Runs a program as one run of the fleet: lock (never waited for: a cron run holding the
  /// store gets a message, not a hang), audit, Ctrl-C, results.
  func run(_ program: Program, savedAs text: String) async {
    let check = self.check
    let diff = self.diff
    let session = self.session
    // The audit log's "runbook": the entry as a runbook says it, hashes redacted here, in
    // CFIScript text: the log's own redaction sees JSON, where a `\$` escape is doubled and
    // no longer looks like a hash.
    let name = "cfi-sh session: " + SecretText.redactingHashes(String(text.prefix(1000)))
    let result: RunResult
    do {
      result = try await fleet.run(lock: check ? .none : .noWait, sink: sink) { sink in
        StopSignals.shared.starting()
        let task = Task { await session.run(program, name: name, check: check, diff: diff, sink: sink) }
        StopSignals.shared.running(task)
        let result = await task.value
        var end = result.end
        end.stopSignal = StopSignals.shared.ran()
        return (result, end)
      }.result
    } catch {
      fail(CommandFailure(error, whenLocked: "try again when it has finished").message)
      return
    }
    if let error = result.error { await report([error]) }
    lastResult = result
    // Saved when it ran for real, to its end, and did not fail everywhere it ran.
    let failedEverywhere = !result.outcomes.isEmpty && result.outcomes.allSatisfy { [.failed, .unreachable].contains($0.status) }
    if !check, result.error == nil, !result.interrupted, !failedEverywhere { saved.append(text) }
    await refreshVocabulary()
  }

  func report(_ diagnostics: [Diagnostic]) async {
    guard !diagnostics.isEmpty else { return }
    let renderer = DiagnosticRenderer(files: await session.files, colors: Style.forStream(.standardError).enabled)
    Stream.standardError.write(renderer.render(diagnostics))
  }

  /// Every group: the store's, the inventory's (with the session's `group`s), `unknown`.
  func allGroups(_ inventory: Inventory) -> Set<GroupName> {
    Set(store.groups().compactMap(GroupName.init)).union(inventory.groupNames).union([.unknown])
  }

  /// Updates what completion offers from the session and the inventory.
  func refreshVocabulary() async {
    let inventory = await session.inventory
    let variables = await session.variables.keys.sorted()
    let functions = await session.functions.keys.sorted()
    let groups = allGroups(inventory)
    let names = inventory.hosts.map(\.name.rawValue)
    let folded = groups.map { HostFolding.foldedString(inventory.hosts(inGroup: $0).map(\.name)) }
      .filter { $0.contains("[") }
    let targetGroups = target.map { Repl.groups(in: $0.text) } ?? []
    vocabulary.value.withLock {
      $0.groups = groups.sorted().map(\.rawValue)
      $0.hosts = names + folded
      $0.variables = variables
      $0.functions = functions
      $0.targetGroups = targetGroups
    }
  }

  /// The groups a target text names (`group a, b` or `@a`).
  static func groups(in text: String) -> [String] {
    let words = text.split(whereSeparator: { " ,".contains($0) }).map(String.init)
    if words.first == "group" { return Array(words.dropFirst().prefix { $0 != "except" }) }
    return words.filter { $0.hasPrefix("@") }.map { String($0.dropFirst()) }
  }
}
