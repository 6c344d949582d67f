// A test fleet for one test: scripts/lab brings up hosts in network namespaces, each with its
// own sshd; the lab is torn down when the value goes away. Each lab has its own prefix (and so
// its own bridge and subnet), so tests never share hosts.

import Foundation
import Synchronization
import TestSupport
import Testing

/// Fleet tests need root (network namespaces). In CI they must run: without root, they fail.
let fleetAvailable: Bool = {
  if geteuid() == 0 { return true }
  return ProcessInfo.processInfo.environment["CI"] == "true"  // …and then fail loudly in Lab.init
}()

/// Runs a program that is not the server's cfi-sh (the lab script, ssh-keygen, …) and returns
/// its result. It sees this machine as it is: cfi-sh runs through `Lab.cfi` or `Command.run`,
/// on an `IsolatedMachine`.
@discardableResult
func shell(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Command {
  try Command.run(
    Array(arguments.dropFirst()), stdin: stdin, executable: URL(fileURLWithPath: arguments[0]), environment: environment,
    isolated: false)
}

/// A running lab of test hosts and a store for cfi-sh to use on it.
final class Lab {
  /// Every prefix a test of this run has taken.
  private static let prefixesUsed = Mutex<Set<String>>([])

  let prefix: String
  let hosts: [String]
  let inventory: String
  let key: String
  /// The D-Bus address of the lab's server-side avahi-daemon (DBUS_SYSTEM_BUS_ADDRESS).
  let dbus: String
  /// Where the server side's avahi service files go.
  let serverServices: String
  /// This machine's address on the lab's bridge (the hosts' gateway to the server).
  let serverAddress: String
  let store: TemporaryDirectory
  let auditLog: String
  private let labScript = Command.packageRoot.appendingPathComponent("scripts/lab").path

  /// Brings up `count` hosts in `groups` (blocks of hosts per group, in order).
  init(_ name: String, hosts count: Int = 6, groups: [String] = ["lab", "office"], labOptions: [String] = []) throws {
    guard geteuid() == 0 else {
      Issue.record("fleet tests need root (network namespaces); CI must run them as root")
      throw CancellationError()
    }
    let prefix = "ft" + name.prefix(9).lowercased().filter { $0.isLetter || $0.isNumber }
    self.prefix = prefix
    // Suites run in parallel: two tests with one prefix would tear down each other's hosts.
    guard Lab.prefixesUsed.withLock({ $0.insert(prefix).inserted }) else {
      Issue.record("lab prefix '\(prefix)' is used by two tests; give this lab another name")
      throw CancellationError()
    }
    store = try TemporaryDirectory()
    for group in groups {
      try FileManager.default.createDirectory(atPath: store.path + "/" + group, withIntermediateDirectories: true)
    }
    auditLog = store.path + "/audit.log"
    let up = try shell(
      ["/bin/bash", labScript, "--prefix", prefix, "up", String(count), "--groups", groups.joined(separator: ",")]
        + labOptions)
    guard up.status == 0 else {
      Issue.record("lab up failed: \(up.stderr)")
      throw CancellationError()
    }
    let state = up.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    inventory = state + "/inventory"
    let env = try shell(["/bin/bash", labScript, "--prefix", prefix, "env"]).stdout
    key = Lab.value(of: "LAB_KEY", in: env) ?? ""
    dbus = Lab.value(of: "LAB_DBUS", in: env) ?? ""
    serverServices = Lab.value(of: "LAB_SERVER_SERVICES", in: env) ?? ""
    serverAddress = Lab.value(of: "LAB_SERVER_ADDR", in: env) ?? ""
    // Host names: the first word of each inventory line.
    hosts = try String(contentsOfFile: inventory, encoding: .utf8).split(separator: "\n").compactMap { line in
      line.hasPrefix("#") ? nil : line.split(separator: " ").first.map(String.init)
    }
  }

  deinit {
    _ = try? shell(["/bin/bash", labScript, "--prefix", prefix, "down", "--purge-keys"])
  }

  private static func value(of variable: String, in env: String) -> String? {
    for line in env.split(separator: "\n") {
      var text = line.hasPrefix("export ") ? line.dropFirst(7) : line[...]
      guard text.hasPrefix(variable + "=") else { continue }
      text = text.dropFirst(variable.count + 1)
      return String(text).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
    }
    return nil
  }

  /// Runs a shell command inside a host (as root, in its namespaces).
  @discardableResult
  func exec(_ host: String, _ command: String) throws -> Command {
    try shell(["/bin/bash", labScript, "--prefix", prefix, "exec", host, "sh", "-c", command])
  }

  /// The standard output of a command inside a host, trimmed.
  func read(_ host: String, _ command: String) throws -> String {
    try exec(host, command).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// Host name → TXT of each `_cfi._tcp` service the server side resolves now (one browse).
  func announced() throws -> [String: String] {
    let browse = try shell(["/usr/bin/avahi-browse", "-rptk", "_cfi._tcp"], environment: ["DBUS_SYSTEM_BUS_ADDRESS": dbus])
    var found: [String: String] = [:]
    for line in browse.stdout.split(separator: "\n") where line.hasPrefix("=") {
      let fields = line.split(separator: ";", omittingEmptySubsequences: false)
      if fields.count >= 10 { found[String(fields[3])] = fields[9...].joined(separator: ";").trimmingCharacters(in: ["\""]) }
    }
    return found
  }

  /// Browses the server side until what it resolves (`announced()`) satisfies `check`, for at
  /// most 15 s; records an issue with what it saw last when it never does.
  func waitUntilAnnounced(
    _ check: ([String: String]) -> Bool, sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let deadline = ContinuousClock.now + .seconds(15)
    var seen = try announced()
    while !check(seen) {
      guard ContinuousClock.now < deadline else {
        Issue.record("the server side sees \(seen)", sourceLocation: sourceLocation)
        return
      }
      Thread.sleep(forTimeInterval: 0.3)
      seen = try announced()
    }
  }

  /// Runs a lab command (`stop-avahi HOST`, …).
  @discardableResult
  func lab(_ arguments: String...) throws -> Command {
    try shell(["/bin/bash", labScript, "--prefix", prefix] + arguments)
  }

  func stopSSHD(_ host: String) throws {
    try shell(["/bin/bash", labScript, "--prefix", prefix, "stop-sshd", host])
  }

  /// Writes a file into the store (`group/relative/path`).
  @discardableResult
  func storeFile(_ path: String, _ text: String, mode: Int = 0o644) throws -> String {
    try store.write(path, text, mode: mode)
  }

  /// Runs cfi-sh on this lab: its inventory, key and store, a private audit log, and nothing
  /// else of this machine (`IsolatedMachine`). `through` is a program with its arguments that
  /// starts cfi-sh (its path and arguments follow them), such as a private mount namespace.
  func cfi(
    _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:], through wrapper: [String] = []
  ) throws -> Command {
    let full = ["-i", inventory, "--identity", key, "--store", store.path, "--audit-log", auditLog] + arguments
    guard let program = wrapper.first else { return try Command.run(full, stdin: stdin, environment: environment) }
    return try Command.run(
      Array(wrapper.dropFirst()) + [Command.binary.path] + full, stdin: stdin, executable: URL(fileURLWithPath: program),
      environment: environment)
  }

  /// Starts runbook text with cfi-sh on this lab, in the background.
  func start(_ runbook: String, _ options: [String] = [], environment: [String: String] = [:]) throws -> RunningCommand {
    try RunningCommand(
      ["-i", inventory, "--identity", key, "--store", store.path, "--audit-log", auditLog] + options + ["-c", runbook],
      environment: environment)
  }

  /// Runs runbook text with cfi-sh on this lab.
  func run(_ runbook: String, _ options: [String] = []) throws -> Command {
    try cfi(options + ["-c", runbook])
  }
}
