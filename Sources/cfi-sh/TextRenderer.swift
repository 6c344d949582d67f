// The terminal renderer: per step, identical results are printed once under their folded host
// set (`pc[01-09,11] (10)`); a live progress line on a terminal; a recap at the end.

import Foundation
import Runtime
import Synchronization

/// How much the text renderer says.
enum Verbosity: Sendable {
  /// Failures and the recap only.
  case quiet
  /// Grouped results per step, and the recap.
  case normal
  /// Every host's result as it comes (`host: line`), and the recap.
  case verbose
}

/// Renders run events as text for people.
final class TextRenderer: EventSink {
  private let verbosity: Verbosity
  private let style: Style
  private let progress: Bool
  /// Where results go: standard output, or a test's buffer. Called under the renderer's lock.
  private let output: @Sendable (String) -> Void
  private let state = Mutex(State())

  /// Longest output shown per result group in normal mode; why: a `run "dpkg -l"` on 200
  /// hosts must stay readable. `--verbose` shows everything.
  static let maxOutputLines = 40

  private struct StepKey: Hashable {
    var location: String
    var occurrence: Int
  }

  private struct StepRecord {
    var info: StepInfo
    var results: [(host: String, result: StepResult)] = []
  }

  private struct BlockState {
    var info: BlockInfo
    var steps: [StepKey: StepRecord] = [:]
    var order: [StepKey] = []
    var occurrences: [String: [String: Int]] = [:]
    var done = 0
    var failed = 0
    var unreachable = 0
  }

  private struct State {
    var blocks: [Int: BlockState] = [:]
    var progressShown = false
  }

  init(
    verbosity: Verbosity, style: Style, progress: Bool,
    output: @escaping @Sendable (String) -> Void = { Stream.standardOutput.write($0) }
  ) {
    self.verbosity = verbosity
    self.style = style
    self.progress = progress
    self.output = output
  }

  func emit(_ event: Event) {
    state.withLock { state in
      switch event {
      case .runStarted(_, let check, _, _):
        if check && verbosity != .quiet { write(style.cyan("check mode: nothing will be changed") + "\n", &state) }
      case .blockStarted(let info):
        state.blocks[info.id] = BlockState(info: info)
        if verbosity != .quiet {
          let hosts = info.hosts.isEmpty ? "no hosts" : "\(info.hosts.count) host\(info.hosts.count == 1 ? "" : "s"): \(HostFolding.foldedString(info.hosts.map(\.name)))"
          write(style.bold("\(info.label)") + style.dim(" (\(hosts))") + "\n", &state)
        }
        // Even with --quiet: a host the target named is not worked on.
        if let note = info.leftOutNote { write(style.cyan("note: ") + note + "\n", &state) }
      case .hostsJoined(let block, let hosts):
        state.blocks[block]?.info.hosts += hosts
        if verbosity != .quiet, let label = state.blocks[block]?.info.label {
          let count = "\(hosts.count) host\(hosts.count == 1 ? "" : "s")"
          write(style.bold(label) + style.dim(" (+\(count) found by discovery: \(HostFolding.foldedString(hosts.map(\.name))))") + "\n", &state)
        }
      case .noHosts(_, let target, let location):
        // Every verbosity: a block that did nothing is as much news as a failure.
        write(style.yellow("warning: \(target) matched no host") + style.dim("  \(location)") + "\n", &state)
      case .stepStarted:
        break
      case .stepFinished(let step, let host, let result):
        record(step, host.name.rawValue, result, &state)
        if verbosity == .verbose { write(streamed(step, host.name.rawValue, result), &state) }
      case .hostFinished(let block, let outcome):
        state.blocks[block]?.done += 1
        if outcome.status == .failed { state.blocks[block]?.failed += 1 }
        if outcome.status == .unreachable { state.blocks[block]?.unreachable += 1 }
        if let block = state.blocks[block] { showProgress(block, &state) }
      case .blockFinished(let id, let outcomes, let stopped):
        guard let block = state.blocks.removeValue(forKey: id) else { break }
        if verbosity != .verbose {
          for key in block.order { write(grouped(block.steps[key]!), &state) }
        }
        let skipped = outcomes.filter { $0.status == .skipped }.map(\.host.name)
        if stopped {
          write(style.red("max_fail reached: no new host started; the run stops here") + "\n", &state)
        }
        if !skipped.isEmpty {
          write(style.cyan("not started: ") + fold(skipped.map(\.rawValue)) + "\n", &state)
        }
      case .message(let text, let host):
        write((host.map { "\($0.name): " } ?? "") + text + "\n", &state)
      case .deliveriesRecorded(let hosts, let expires):
        // Every verbosity: what is still owed to hosts is part of the run's result.
        let until = expires.map { ", until " + Self.localTime($0) } ?? ""
        write(
          style.cyan("delivery pending: ") + fold(hosts.map(\.rawValue))
            + style.dim(" (run for them when they come back: 'cfi-sh watch'\(until); 'cfi-sh deliveries')") + "\n", &state)
      case .runFinished(let outcomes, let interrupted, _, _, _):
        write(recap(outcomes, interrupted: interrupted), &state)
      }
    }
  }

  // MARK: - Pieces

  /// `2026-12-13 21:40` in this machine's time zone (or `timeZone`).
  static func localTime(_ date: Date, in timeZone: TimeZone = .current) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = timeZone
    formatter.dateFormat = "yyyy-MM-dd HH:mm"
    return formatter.string(from: date)
  }

  private func record(_ step: StepInfo, _ host: String, _ result: StepResult, _ state: inout State) {
    guard var block = state.blocks[step.block] else { return }
    let occurrence = block.occurrences[host, default: [:]][step.location, default: 0]
    block.occurrences[host, default: [:]][step.location] = occurrence + 1
    let key = StepKey(location: step.location, occurrence: occurrence)
    if block.steps[key] == nil {
      block.steps[key] = StepRecord(info: step)
      block.order.append(key)
    }
    block.steps[key]!.results.append((host, result))
    state.blocks[step.block] = block
  }

  private func fold(_ hosts: [String]) -> String {
    "\(HostFolding.foldedString(hosts)) (\(hosts.count))"
  }

  private func statusWord(_ result: StepResult, tolerated: Bool) -> String {
    var word = result.status.rawValue
    if let code = result.exitCode, code != 0 { word += " (exit \(code))" }
    if tolerated && result.status == .failed { word += ", tolerated by try" }
    switch result.status {
    case .ok: return style.green(word)
    case .changed: return style.yellow(word)
    case .skipped: return style.cyan(word)
    case .failed, .interrupted: return style.red(word)
    case .unreachable: return style.magenta(word.uppercased())
    }
  }

  /// Output lines of a result: stdout, then stderr, clipped in normal mode.
  private func outputLines(_ result: StepResult) -> [String] {
    var lines: [String] = []
    let out = result.output.hasSuffix("\n") ? String(result.output.dropLast()) : result.output
    if !out.isEmpty { lines += out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    let err = result.errorOutput.hasSuffix("\n") ? String(result.errorOutput.dropLast()) : result.errorOutput
    if !err.isEmpty { lines += err.split(separator: "\n", omittingEmptySubsequences: false).map { style.dim(String($0)) } }
    return lines
  }

  /// One step's results: identical results once, under their folded host set.
  private func grouped(_ record: StepRecord) -> String {
    struct Key: Hashable {
      var status: StepStatus
      var exitCode: Int32?
      var output: String
      var errorOutput: String
      var message: String?
      var diff: String?
    }
    var groups: [Key: [String]] = [:]
    var representative: [Key: StepResult] = [:]
    for (host, result) in record.results {
      let key = Key(status: result.status, exitCode: result.exitCode, output: result.output, errorOutput: result.errorOutput, message: result.message, diff: result.diff)
      groups[key, default: []].append(host)
      representative[key] = result
    }
    if verbosity == .quiet {
      groups = groups.filter { $0.key.status == .failed || $0.key.status == .unreachable }
      if groups.isEmpty { return "" }
    }
    let ordered = groups.sorted { HostFolding.naturalLess($0.value.min(by: HostFolding.naturalLess)!, $1.value.min(by: HostFolding.naturalLess)!) }
    let labels = ordered.map { fold($0.value) }
    let width = labels.map(\.count).max() ?? 0
    var out = style.bold("- \(record.info.label)") + style.dim("  \(record.info.location)") + "\n"
    for ((key, _), label) in zip(ordered, labels) {
      let result = representative[key]!
      var line = "  " + label + String(repeating: " ", count: width - label.count) + "  " + statusWord(result, tolerated: record.info.tolerated)
      if let message = result.message { line += ": " + message }
      var lines = outputLines(result)
      if lines.count == 1 && result.message == nil {
        line += "  " + lines[0]
        lines = []
      }
      out += line + "\n"
      let shown = verbosity == .verbose ? lines : Array(lines.prefix(TextRenderer.maxOutputLines))
      for text in shown { out += "      " + text + "\n" }
      if shown.count < lines.count {
        out += style.dim("      … \(lines.count - shown.count) more lines (--verbose shows all)") + "\n"
      }
      for text in diffLines(result) { out += "      " + text + "\n" }
    }
    return out
  }

  /// The lines of a result's diff (--diff), whole: it was asked for. Colored as `git diff` does.
  private func diffLines(_ result: StepResult) -> [String] {
    guard let diff = result.diff, !diff.isEmpty else { return [] }
    return (diff.hasSuffix("\n") ? String(diff.dropLast()) : diff).split(separator: "\n", omittingEmptySubsequences: false).map {
      let line = String($0)
      if line.hasPrefix("+++ ") || line.hasPrefix("--- ") { return style.bold(line) }
      if line.hasPrefix("@@ ") { return style.cyan(line) }
      if line.hasPrefix("+") { return style.green(line) }
      if line.hasPrefix("-") { return style.red(line) }
      return line
    }
  }

  /// One host's result as it arrives (`--verbose`), pdsh style: `host: line`.
  private func streamed(_ step: StepInfo, _ host: String, _ result: StepResult) -> String {
    var head = "\(host): \(step.label): \(statusWord(result, tolerated: step.tolerated))"
    if let message = result.message { head += ": " + message }
    head += style.dim(" (\(result.duration.elapsedText))")
    return ([head] + (outputLines(result) + diffLines(result)).map { "\(host): \($0)" }).joined(separator: "\n") + "\n"
  }

  private func recap(_ outcomes: [HostOutcome], interrupted: Bool) -> String {
    guard !outcomes.isEmpty || interrupted else { return "" }
    var out = style.bold("recap") + " "
    var parts: [String] = []
    for status in StepStatus.allCases {
      let hosts = outcomes.filter { $0.status == status }.map(\.host.name.rawValue)
      guard !hosts.isEmpty else { continue }
      let word: String
      switch status {
      case .ok: word = style.green("ok")
      case .changed: word = style.yellow("changed")
      case .skipped: word = style.cyan("skipped")
      case .failed, .interrupted: word = style.red(status.rawValue)
      case .unreachable: word = style.magenta("unreachable")
      }
      parts.append("\(word): \(fold(hosts))")
    }
    out += parts.joined(separator: "  ") + "\n"
    // Why each failed or unreachable host stopped, grouped by reason.
    var reasons: [String: [String]] = [:]
    for outcome in outcomes where outcome.status == .failed || outcome.status == .unreachable {
      reasons["\(outcome.status.rawValue): \(outcome.message ?? "")", default: []].append(outcome.host.name.rawValue)
    }
    for (reason, hosts) in reasons.sorted(by: { $0.key < $1.key }) {
      out += "  " + fold(hosts) + " " + style.red(reason) + "\n"
    }
    if interrupted { out += style.red("interrupted") + "\n" }
    return out
  }

  // MARK: - Writing

  private func showProgress(_ block: BlockState, _ state: inout State) {
    guard progress else { return }
    Stream.standardError.write(
      "\r\u{1B}[K"
        + Self.progressLine(
          block.info.label, done: block.done, of: block.info.hosts.count, failed: block.failed, unreachable: block.unreachable))
    state.progressShown = true
  }

  /// `on group lab: 7/12 hosts done, 1 failed, 2 unreachable`: a host that failed and one
  /// not reached call for different actions, so they are counted apart.
  static func progressLine(_ label: String, done: Int, of total: Int, failed: Int, unreachable: Int) -> String {
    var line = "\(label): \(done)/\(total) hosts done"
    if failed > 0 { line += ", \(failed) failed" }
    if unreachable > 0 { line += ", \(unreachable) unreachable" }
    return line
  }

  private func write(_ text: String, _ state: inout State) {
    guard !text.isEmpty else { return }
    if state.progressShown {
      Stream.standardError.write("\r\u{1B}[K")
      state.progressShown = false
    }
    output(text)
  }
}
