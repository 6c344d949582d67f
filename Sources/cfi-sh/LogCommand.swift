// `cfi-sh log`: the run history of a store (its state database) — recent runs, one run shown
// as its end-of-run output was, one host's history; `--json` for each. The REPL's `:log` shows
// the same views (`LogView`).

import ArgumentParser
import Foundation
import Runtime
import Synchronization

struct LogCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "log",
    abstract: "Show the run history: recent runs, one run, or one host's history.",
    discussion: """
      Without RUN: the newest runs first, with a short id (as git shortens its
      ids), when they started, how long they took, who ran them, the exit status,
      how many hosts ended ok, changed, failed, unreachable, and the runbook
      (dry runs say '(check)'). RUN (a full id, a unique prefix of one, or 'last'
      for the newest) shows that run as it was shown at its end: each step with
      its hosts folded by identical result, then the recap. --host NAME shows the
      runs that reached NAME, newest first, one line per step.

      The history is the store's state database (STORE/.cfi/state.sqlite), written
      by every run; output is kept up to 16 KiB per step and host, password hashes
      redacted. The audit log (/var/log/cfi/audit.log) keeps one record per run.

      Exit status: 0, also when there is nothing to show yet; 1 when RUN is not
      in the history or the history cannot be read; 64 for a usage error.
      """)

  @Option(help: ArgumentHelp("The store (default /var/lib/cfi, or CFI_STORE).", valueName: "dir"))
  var store: String?

  @Option(name: [.customShort("n"), .customLong("max-count")], help: ArgumentHelp("Show at most N runs.", valueName: "n"))
  var count = 20

  @Option(help: ArgumentHelp("Show this host's history.", valueName: "name"), completion: CompletionKind.hosts)
  var host: HostName?

  @Flag(help: "Write JSON (the shapes: docs/json-events.md, 'cfi-sh log').")
  var json = false

  @Flag(name: .shortAndLong, help: "With RUN: show all output, not its first 40 lines per result.")
  var verbose = false

  @Argument(help: ArgumentHelp("A run: its id, a unique prefix of it, or 'last'.", valueName: "run"))
  var run: String?

  func validate() throws {
    if count < 1 { throw ValidationError("--max-count must be at least 1") }
    if run != nil && host != nil { throw ValidationError("give RUN or --host, not both") }
  }

  func run() async throws {
    let store = Store(root: CFISh.setting(self.store, "CFI_STORE") ?? Store.defaultRoot)
    let view = LogView(json: json, verbosity: verbose ? .verbose : .normal)
    do {
      let query = try HistoryQuery.open(store: store)
      if let run {
        Stream.standardOutput.write(view.render(try query.run(run)))
      } else if let host {
        let runs = try query.host(host, runs: count)
        if runs.isEmpty { Stream.standardError.write("cfi-sh: no runs of \(host) recorded in \(store.root)\n") }
        Stream.standardOutput.write(view.render(runs, of: host))
      } else {
        let runs = try query.recentRuns(count: count)
        if runs.isEmpty { throw HistoryError.noHistory(store: store.root) }
        Stream.standardOutput.write(view.render(runs))
      }
    } catch HistoryError.noHistory(let root) where run == nil {
      Stream.standardError.write("cfi-sh: \(HistoryError.noHistory(store: root))\n")
    } catch let error as HistoryError {
      throw CommandFailure(message: error.description, status: ExitStatus.runbookError).end()
    }
  }
}

/// The history's views, as text for people or as JSON.
struct LogView {
  var json: Bool
  var verbosity: Verbosity = .normal
  var style = Style.forStream(.standardOutput)
  /// Times are shown in it (tests fix it); JSON has UTC.
  var timeZone = TimeZone.current

  /// The REPL's `:log WORD`: recent runs (no word), a run (`last`, an id or its prefix), or
  /// else a host's runs (a word that is both a run's id prefix and a host name is the run).
  func show(_ word: String, in query: HistoryQuery, count: Int = 20) throws(HistoryError) -> String {
    if word.isEmpty {
      let runs = try query.recentRuns(count: count)
      if runs.isEmpty { throw .noHistory(store: query.store) }
      return render(runs)
    }
    let detail: RunDetail
    do { detail = try query.run(word) } catch {
      guard case .unknownRun = error, let host = HostName(word) else { throw error }
      let runs = try query.host(host, runs: count)
      if runs.isEmpty { throw error }
      return render(runs, of: host)
    }
    return render(detail)
  }

  // MARK: - Recent runs

  func render(_ runs: [RecordedRun]) -> String {
    if json { return runs.map { line(RunJSON($0)) }.joined() }
    return HostsCommand.table(
      ["RUN", "STARTED", "TOOK", "USER", "EXIT", "HOSTS", "RUNBOOK"],
      runs.map { run in
        [
          run.shortID, time(run.started), took(run), who(run), run.exitStatus.map(String.init) ?? "-", counts(run),
          runbook(run),
        ]
      })
  }

  private func runbook(_ run: RecordedRun) -> String { run.runbook + (run.check ? " (check)" : "") }
  private func who(_ run: RecordedRun) -> String { run.sudoUser.map { "\($0) (sudo)" } ?? run.user }

  private func took(_ run: RecordedRun) -> String {
    guard let finished = run.finished else { return "-" }
    return Duration.milliseconds(Int64(finished.timeIntervalSince(run.started) * 1000)).elapsedText
  }

  /// `2 ok, 1 failed`, in the recap's order.
  private func counts(_ run: RecordedRun) -> String {
    let parts = StepStatus.allCases.compactMap { status in run.hostCounts[status].map { "\($0) \(status.rawValue)" } }
    return parts.isEmpty ? "-" : parts.joined(separator: ", ")
  }

  private func time(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = timeZone
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: date)
  }

  // MARK: - One run

  /// The run as its end-of-run output showed it, under a header; JSON: its events as `--json`
  /// wrote them (docs/json-events.md), as far as the history keeps them.
  func render(_ detail: RunDetail) -> String {
    let buffer = Buffer()
    let run = detail.run
    let renderer: any EventSink =
      json
      ? JSONRenderer(output: { buffer.add(String(decoding: $0, as: UTF8.self)) }, now: { run.finished ?? run.started })
      : TextRenderer(verbosity: verbosity, style: style, progress: false, output: { buffer.add($0) })
    for event in detail.events { renderer.emit(event) }
    if json { return buffer.text }
    var head = [style.bold("run \(run.id)")]
    head.append("runbook: " + ([runbook(run)] + (run.arguments.isEmpty ? [] : [ShellQuote.join(run.arguments)])).joined(separator: " "))
    // The text of a runbook without a file (a file's is in --json: `source`).
    if let source = run.source, run.runbook.hasPrefix("<") {
      head += source.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
    }
    head.append("user:    " + who(run))
    head.append("started: " + time(run.started) + (run.finished == nil ? ", not finished" : ", took " + took(run)))
    if let status = run.exitStatus { head.append("exit:    \(status)" + (run.signal.map { " (\($0))" } ?? "")) }
    if let error = run.error { head.append(style.red("error: ") + error) }
    return head.joined(separator: "\n") + "\n\n" + buffer.text
  }

  // MARK: - One host

  func render(_ runs: [HostRun], of host: HostName) -> String {
    if json { return runs.map { line(HostRunJSON($0)) }.joined() }
    var rows: [[String]] = []
    for entry in runs {
      let run = entry.run
      let head = [time(run.started), run.shortID, runbook(run)]
      if entry.steps.isEmpty, let outcome = entry.outcome {
        rows.append(head + ["-", outcome.status.rawValue, "-", outcome.reason?.rawValue ?? outcome.message ?? ""])
      }
      for step in entry.steps {
        let result = step.result
        rows.append(
          head + [
            step.step.label, result.status.rawValue + (step.step.tolerated && result.status == .failed ? " (tolerated)" : ""),
            result.exitCode.map(String.init) ?? "-", result.reason?.rawValue ?? result.message ?? "",
          ])
      }
    }
    return HostsCommand.table(["STARTED", "RUN", "RUNBOOK", "STEP", "STATUS", "EXIT", "REASON"], rows)
  }

  // MARK: - JSON

  private func line(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return ((try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
  }

  /// A run in `cfi-sh log --json`.
  private struct RunJSON: Encodable {
    var run: String
    var shortId: String
    var runbook: String
    var arguments: [String]
    var source: String?
    var user: String
    var sudoUser: String?
    var check: Bool
    var started: Date
    var finished: Date?
    var exitStatus: Int32?
    var signal: String?
    var error: String?
    var hosts: [String: Int]

    init(_ run: RecordedRun) {
      self.run = run.id
      shortId = run.shortID
      runbook = run.runbook
      arguments = run.arguments
      source = run.source
      user = run.user
      sudoUser = run.sudoUser
      check = run.check
      started = run.started
      finished = run.finished
      exitStatus = run.exitStatus
      signal = run.signal
      error = run.error
      hosts = Dictionary(uniqueKeysWithValues: run.hostCounts.map { ($0.key.rawValue, $0.value) })
    }

    enum CodingKeys: String, CodingKey {
      case run, shortId = "short_id", runbook, arguments, source, user, sudoUser = "sudo_user", check, started, finished
      case exitStatus = "exit_status", signal, error, hosts
    }
  }

  /// A run of one host in `cfi-sh log --host NAME --json`.
  private struct HostRunJSON: Encodable {
    var run: RunJSON
    var host: String
    var group: String?
    var status: String?
    var reason: String?
    var message: String?
    var steps: [Step]

    struct Step: Encodable {
      var block: Int
      var location: String
      var step: String
      var tolerated: Bool?
      var status: String
      var exitCode: Int32?
      var reason: String?
      var message: String?
      var durationMs: Int64
      var time: Date

      enum CodingKeys: String, CodingKey {
        case block, location, step, tolerated, status, exitCode = "exit_code", reason, message, durationMs = "duration_ms", time
      }
    }

    init(_ entry: HostRun) {
      run = RunJSON(entry.run)
      host = entry.outcome?.host.name.rawValue ?? entry.steps.first?.host.name.rawValue ?? ""
      group = entry.outcome?.host.group.rawValue ?? entry.steps.first?.host.group.rawValue
      status = entry.outcome?.status.rawValue
      reason = entry.outcome?.reason?.rawValue
      message = entry.outcome?.message
      steps = entry.steps.map { step in
        Step(
          block: step.step.block, location: step.step.location, step: step.step.label, tolerated: step.step.tolerated ? true : nil,
          status: step.result.status.rawValue, exitCode: step.result.exitCode, reason: step.result.reason?.rawValue,
          message: step.result.message, durationMs: step.result.duration.wholeMilliseconds, time: step.finished)
      }
    }

    // The run's fields at the top, beside the host's.
    func encode(to encoder: any Encoder) throws {
      try run.encode(to: encoder)
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(host, forKey: .host)
      try container.encodeIfPresent(group, forKey: .group)
      try container.encodeIfPresent(status, forKey: .status)
      try container.encodeIfPresent(reason, forKey: .reason)
      try container.encodeIfPresent(message, forKey: .message)
      try container.encode(steps, forKey: .steps)
    }

    enum CodingKeys: String, CodingKey { case host, group, status, reason, message, steps }
  }
}

/// Text collected from a renderer.
private final class Buffer: Sendable {
  private let storage = Mutex("")
  func add(_ text: String) { storage.withLock { $0 += text } }
  var text: String { storage.withLock { $0 } }
}
