// Golden files of the operations: for each action and variant, the exact commands and pushes
// cfi-sh sends to a host, and the step result they decode to.
//
// Layout of `Golden/Operations/` (next to this file): `NAME.case` is a case, `NAME.golden`
// its expectation; `store/` is the store the cases read (groups `lab` and `office`). A case
// is `key: value` lines (`#` lines are comments, copied to the top of the expectation):
// - `action:` the action, written as in the language but without quotes except `'…'` around
//   a word with spaces (`run` takes the rest of the line as its command);
// - `group:` the host's group (default `lab`); `user:` the user ssh logs in as (default root);
//   `check: true`; `diff: true`; `timeout:` and `connect-timeout:` in seconds; `refreshed: true` (apt lists
//   already refreshed this run); `reboot-timeout:` in seconds;
// - `reply: STATUS [STDOUT]` the result of the next command or push, in order (`\n` in
//   STDOUT is a line break; default: exit 0, no output), `stderr:` that reply's stderr (`\n` too);
// - `awaited:` what a wait for a reboot finds: `back SECONDS`, `same` (the same boot id) or
//   `gone` (not reached; the default is `back 23`).
// The store's absolute path is shown as `STORE`.
//
// Recording: `CFI_RECORD=1 swift test --filter OperationGolden` rewrites the expectations;
// every rewritten case then fails with "recorded …" and `recordingIsOff` fails, so a
// recording run is never mistaken for a pass.

import Foundation
import Testing

@testable import Runtime
import TestSupport

@Suite struct OperationGoldenTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Golden/Operations").path
  static let recording = ProcessInfo.processInfo.environment["CFI_RECORD"] == "1"

  static func cases() -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
      .filter { $0.hasSuffix(".case") }.map { String($0.dropLast(".case".count)) }.sorted()
  }

  @Test(arguments: cases())
  func operation(_ name: String) throws {
    let text = try String(contentsOfFile: "\(Self.directory)/\(name).case", encoding: .utf8)
    let actual = try Self.render(text)
    let path = "\(Self.directory)/\(name).golden"
    if Self.recording {
      if (try? String(contentsOfFile: path, encoding: .utf8)) != actual {
        try actual.write(toFile: path, atomically: true, encoding: .utf8)
        Issue.record("recorded \(name).golden; run again without CFI_RECORD")
      }
      return
    }
    let expected = try? String(contentsOfFile: path, encoding: .utf8)
    #expect(
      expected == actual,
      "\(name): the operation differs from \(name).golden; review, then record with CFI_RECORD=1 swift test --filter OperationGolden\n\(actual)")
  }

  /// Fails while recording, so that a recording run never looks like a passing one.
  @Test func recordingIsOff() {
    #expect(!Self.recording, "CFI_RECORD=1: expectations were rewritten; review them and run again without it")
  }

  @Test func everyGoldenHasItsCase() throws {
    let goldens = try FileManager.default.contentsOfDirectory(atPath: Self.directory).filter { $0.hasSuffix(".golden") }
    #expect(Set(goldens.map { String($0.dropLast(".golden".count)) }) == Set(Self.cases()))
  }

  /// The expectation of a case: its comments, then each command or push with its reply, then the result.
  static func render(_ text: String) throws -> String {
    var comments: [String] = []
    var fields: [(key: String, value: String)] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
      if line.hasPrefix("#") { comments.append(String(line)); continue }
      let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      try #require(parts.count == 2, "not 'key: value': \(line)")
      fields.append((parts[0], parts[1]))
    }
    func value(_ key: String) -> String? { fields.first { $0.key == key }?.value }
    var replies: [Exited] = []
    for field in fields {
      if field.key == "reply" {
        let words = field.value.split(separator: " ", maxSplits: 1).map(String.init)
        let stdout = words.count == 2 ? words[1].replacingOccurrences(of: "\\n", with: "\n") : ""
        replies.append(Exited(status: try #require(Int32(words[0])), stdout: stdout))
      } else if field.key == "stderr" {
        try #require(!replies.isEmpty, "stderr: before any reply")
        replies[replies.count - 1].stderr = field.value.replacingOccurrences(of: "\\n", with: "\n")
      }
    }
    let actionText = try #require(value("action"), "no action")
    let action = try parseAction(actionText)
    let host = Host(
      name: "pc01", group: try #require(GroupName(value("group") ?? "lab"), "bad group"), user: value("user"))
    let options = StepOptions(
      check: value("check") == "true", diff: value("diff") == "true",
      timeout: value("timeout").flatMap(Int.init).map { .seconds($0) },
      connectTimeout: .seconds(value("connect-timeout").flatMap(Int.init) ?? 10),
      rebootTimeout: .seconds(value("reboot-timeout").flatMap(Int.init) ?? 600))
    let facts = HostFacts(host: host, options: options, aptListsRefreshed: value("refreshed") == "true")
    let store = Store(root: directory + "/store")

    var lines = comments + ["action: \(actionText)"] + (host.user.map { ["user: \($0)"] } ?? []) + [""]
    var plan: Plan
    do throws(StoreError) {
      plan = Operations.plan(try PreparedAction.prepare(action, for: host, store: store), facts: facts)
    } catch {
      plan = .done(.failure(error.message), learned: [])
    }
    while true {
      let exited: Exited
      let sent: String
      let next: @Sendable (Exited) -> Plan
      switch plan {
      case .done(let result, let learned):
        lines += describe(result)
        if !learned.isEmpty { lines.append("learned: apt lists refreshed") }
        return lines.joined(separator: "\n").replacingOccurrences(of: store.root, with: "STORE") + "\n"
      case .command(let command, let then): (sent, next) = (command.description, then)
      case .push(let push, let then): (sent, next) = (push.description, then)
      case .pull(let pull, let then): (sent, next) = (pull.description, then)
      case .read(let read, let then):
        lines += [read.description, ""]
        plan = then(read.perform())
        continue
      case .awaitReboot(let wait, let then):
        let awaited = value("awaited") ?? "back 23"
        let outcome: RebootWait.Outcome =
          switch awaited {
          case "same": .sameBootID
          case "gone": .notBack(Unreachable(.refused, "connection refused"))
          default: .back(after: .seconds(try #require(Int(awaited.dropFirst("back ".count)), "bad awaited: \(awaited)")))
          }
        lines += wait.description.split(separator: "\n").map(String.init) + ["awaited: \(awaited)", ""]
        plan = then(outcome)
        continue
      }
      exited = replies.isEmpty ? Exited(status: 0) : replies.removeFirst()
      lines += sent.split(separator: "\n").map(String.init)
      plan = next(exited)
      lines.append("reply: exit \(exited.status)" + (exited.stdout.isEmpty ? "" : ", stdout: \(exited.stdout.debugDescription)")
        + (exited.stderr.isEmpty ? "" : ", stderr: \(exited.stderr.debugDescription)"))
      lines.append("")
    }
  }

  static func describe(_ result: StepResult) -> [String] {
    var lines = ["result: \(result.status.rawValue)"]
    if let code = result.exitCode { lines.append("exit: \(code)") }
    if let message = result.message { lines.append("message: \(message)") }
    if let reason = result.reason { lines.append("reason: \(reason.rawValue)") }
    if !result.output.isEmpty { lines.append("output: \(result.output.debugDescription)") }
    if !result.errorOutput.isEmpty { lines.append("error output: \(result.errorOutput.debugDescription)") }
    if let diff = result.diff { lines += ["diff:"] + diff.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { "  " + $0 } }
    return lines
  }

  /// An action as a case writes it.
  static func parseAction(_ text: String) throws -> Action {
    let keyword = String(text.prefix { $0 != " " })
    let rest = String(text.dropFirst(keyword.count).drop { $0 == " " })
    var words: [String] = []
    var word: String?
    var quoted = false
    for character in rest {
      if character == "'" { quoted.toggle(); word = word ?? ""; continue }
      if character == " " && !quoted {
        if let finished = word { words.append(finished) }
        word = nil
      } else {
        word = (word ?? "") + String(character)
      }
    }
    if let word { words.append(word) }
    switch keyword {
    case "copy": return .copy(path: try #require(words.first), destination: words.count > 1 ? words[1] : nil)
    case "sync": return .sync
    case "run": return .run(command: rest)
    case "script": return .script(path: try #require(words.first), arguments: Array(words.dropFirst()))
    case "password": return .password(user: words[0], hash: Secret(words[1]))
    case "install": return .install(packages: words)
    case "remove": return .remove(packages: words)
    case "upgrade": return words == ["full"] ? .fullUpgrade : .upgrade
    case "pkgsync": return .pkgsync
    case "service":
      return .service(unit: words[0], state: try #require(ServiceState(rawValue: words[1]), "unknown state \(words[1])"))
    case "fetch": return .fetch(path: try #require(words.first))
    case "reboot": return .reboot(onlyIfNeeded: rest == "if needed")
    default: throw CaseError(message: "unknown action '\(keyword)'")
    }
  }

  struct CaseError: Error {
    var message: String
  }
}
