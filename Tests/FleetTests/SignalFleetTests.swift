// How a run ends when something stops it: SIGTERM (cron, systemd), SIGHUP (a closed terminal),
// SIGINT (Ctrl-C) and a broken stdout (`cfi-sh … | head -c 1`) all stop it the same way —
// the remote commands killed, the hosts reported `interrupted`, one audit record, no ssh left
// running, no control socket left, the lock free for the next run — each with its own status.
// Watchdogs fail a run that outlives 3× the bound of its stopping, instead of timing it.

import Foundation
import TestSupport
import Testing

/// How long stopping a run may take: the remote kill rides the master (its own connect
/// timeout is 5 s), then the masters are closed over their sockets (2 s each at worst).
private let stopBound: Duration = .seconds(10)

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct SignalFleetTests {
  /// The signal matrix: each stop, during a long command on 5 hosts.
  @Test(arguments: [
    (name: "sgterm", stop: SignalStop.signal(SIGTERM), status: Int32(143), signal: "SIGTERM"),
    (name: "sghup", stop: SignalStop.signal(SIGHUP), status: Int32(129), signal: "SIGHUP"),
    (name: "sgint", stop: SignalStop.signal(SIGINT), status: Int32(130), signal: "SIGINT"),
    (name: "sgpipe", stop: SignalStop.closeOutput, status: Int32(141), signal: "SIGPIPE"),
  ])
  func aStoppedRunLeavesNothingBehind(name: String, stop: SignalStop, status: Int32, signal: String) throws {
    let lab = try Lab(name, hosts: 5)
    let runtime = try TemporaryDirectory()
    let run = try StoppableRun(lab: lab, runbook: #"on all < run "sleep 60"; run "touch /root/after" >"#, runtime: runtime)
    defer { run.kill() }
    try waitUntil("every host runs the sleep", within: .seconds(30)) {
      try lab.hosts.allSatisfy { try lab.exec($0, "pgrep -f '^sleep 60$'").status == 0 }
    }
    run.stop(stop)
    let ended = try #require(run.wait(within: stopBound * 3), "cfi-sh still runs 3× the stop bound after \(stop)")
    #expect(ended == .exited(status), "\(run.standardError)")

    for host in lab.hosts {
      #expect(try lab.exec(host, "pgrep -f '^sleep 60$'").status != 0, "the remote sleep still runs on \(host)")
      #expect(try lab.exec(host, "test -e /root/after").status != 0, "the step after the stop ran on \(host)")
    }
    // Every ssh of the run (clients, masters, rsync's) names a control path under `runtime`.
    try waitUntil("no ssh of the run left", within: stopBound * 3) {
      try localSSH(under: runtime).isEmpty
    }
    let left = try leftIn(runtime)
    #expect(left.isEmpty, "control directory left behind: \(left)")

    let records = try auditRecords(lab)
    let runs = records.filter { $0["record"] as? String == "run" }
    #expect(runs.count == 1, "one audit record of the run")
    #expect(runs.first?["hosts"] as? [String: String] == all(lab.hosts, "interrupted"))
    #expect(runs.first?["signal"] as? String == signal)
    #expect(runs.first?["exitStatus"] as? Int == Int(status))

    // The lock is free at once: a run that does not wait gets it.
    let next = try lab.run(#"on all < run "true" >"#, ["--no-wait"])
    #expect(next.status == 0, "\(next.stderr)")
  }

  /// A second signal while a run stops quits at once, without waiting for a host that does
  /// not answer its kill; the next run removes what the first left (its control directory, its
  /// masters).
  @Test func aSecondSignalQuitsAtOnceAndTheNextRunClearsWhatWasLeft() throws {
    let lab = try Lab("sgtwice", hosts: 2)
    let runtime = try TemporaryDirectory()
    let run = try StoppableRun(lab: lab, runbook: #"on all < run "sleep 60" >"#, runtime: runtime)
    defer { run.kill() }
    try waitUntil("every host runs the sleep", within: .seconds(30)) {
      try lab.hosts.allSatisfy { try lab.exec($0, "pgrep -f '^sleep 60$'").status == 0 }
    }
    // pc01 stops answering: its kill over the master waits for ssh's keep-alive to give up
    // (15 s), so the run is still stopping when the second signal comes.
    try lab.exec("pc01", "for i in $(ls /sys/class/net); do [ $i = lo ] || ip link set $i down; done")
    run.stop(.signal(SIGTERM))
    try waitUntil("cfi-sh says it stops", within: stopBound) { run.standardError.contains("stopping remote commands") }
    run.stop(.signal(SIGTERM))
    let ended = try #require(run.wait(within: stopBound), "a second SIGTERM must end cfi-sh at once")
    #expect(ended == .exited(143))
    #expect(try auditRecords(lab).filter { $0["record"] as? String == "run" }.isEmpty, "it waited for the cleanup")
    #expect(try !leftIn(runtime).isEmpty, "the killed run's control directory is the next run's to remove")

    let next = try StoppableRun(lab: lab, runbook: #"on host pc02 < run "true" >"#, runtime: runtime)
    defer { next.kill() }
    #expect(try #require(next.wait(within: stopBound * 3)) == .exited(0), "\(next.standardError)")
    let left = try leftIn(runtime)
    #expect(left.isEmpty, "left behind: \(left)")
    try waitUntil("no ssh of either run left", within: stopBound * 3) { try localSSH(under: runtime).isEmpty }
  }

  /// In the interactive shell, SIGTERM ends the session as it stops a runbook: the entry's
  /// remote commands killed and recorded, then the masters closed.
  @Test func sigtermEndsTheInteractiveShellAfterTheSameCleanup() throws {
    let lab = try Lab("sgrepl", hosts: 3)
    let runtime = try TemporaryDirectory()
    let repl = try lab.repl(
      history: lab.store.path + "/history", environment: ["CFI_RUNTIME_DIR": runtime.path, "TMPDIR": runtime.path])
    defer { repl.terminate() }
    try repl.expect("cfi> ")
    repl.sendLine(#"on all < run "sleep 60" >"#)
    try waitUntil("every host runs the sleep", within: .seconds(30)) {
      try lab.hosts.allSatisfy { try lab.exec($0, "pgrep -f '^sleep 60$'").status == 0 }
    }
    kill(repl.pid, SIGTERM)
    #expect(try repl.waitForExit(timeout: stopBound * 3) == 143)
    for host in lab.hosts {
      #expect(try lab.exec(host, "pgrep -f '^sleep 60$'").status != 0, "the remote sleep still runs on \(host)")
    }
    try waitUntil("no ssh of the session left", within: stopBound * 3) {
      try localSSH(under: runtime).isEmpty
    }
    let left = try leftIn(runtime)
    #expect(left.isEmpty, "control directory left behind: \(left)")
    let runs = try auditRecords(lab).filter { $0["record"] as? String == "run" }
    #expect(runs.count == 1)
    #expect(runs.first?["hosts"] as? [String: String] == all(lab.hosts, "interrupted"))
    #expect(runs.first?["signal"] as? String == "SIGTERM")
  }
}

/// How a test stops a run.
enum SignalStop: Sendable, CustomStringConvertible {
  case signal(Int32)
  /// Closes the read end of cfi-sh's stdout, as `head -c 1` does once it has its byte.
  case closeOutput

  var description: String {
    switch self {
    case .signal(let number): String(cString: strsignal(number))
    case .closeOutput: "closing stdout"
    }
  }
}

/// How a process ended.
enum ProcessEnding: Equatable {
  case exited(Int32)
  case signalled(Int32)
}

/// cfi-sh running a runbook on a lab, in the background, with its stdout a pipe of the test's
/// and its control sockets under `runtime` (both where the product puts them and where a
/// fallback to TMPDIR would), so that the test can stop it and find what it left.
private final class StoppableRun {
  private let process = Process()
  private let machine: IsolatedMachine
  private let errorFile: URL
  /// The read end of cfi-sh's stdout; -1 once closed.
  private var output: Int32

  init(lab: Lab, runbook: String, runtime: TemporaryDirectory) throws {
    machine = try IsolatedMachine()
    errorFile = URL(fileURLWithPath: runtime.path + "-" + UUID().uuidString.prefix(8) + ".err")
    _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
    // Close-on-exec: no other child a test starts may keep a reader on it, or closing ours
    // would not break the pipe. (cfi-sh's own end is dup2'd onto its stdout, without the flag.)
    var ends: [Int32] = [-1, -1]
    guard pipe(&ends) == 0 else { throw POSIXError(.EMFILE) }
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    output = ends[0]
    process.executableURL = Command.binary
    process.arguments =
      ["-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", lab.auditLog, "-c", runbook]
    process.environment = machine.environment(["CFI_RUNTIME_DIR": runtime.path, "TMPDIR": runtime.path])
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle(fileDescriptor: ends[1], closeOnDealloc: false)
    process.standardError = try FileHandle(forWritingTo: errorFile)
    try process.run()
    close(ends[1])
  }

  func stop(_ stop: SignalStop) {
    switch stop {
    case .signal(let number): Foundation.kill(process.processIdentifier, number)
    case .closeOutput:
      // Nothing read it: the run's few lines fit in the pipe's buffer.
      close(output)
      output = -1
    }
  }

  /// How it ended, or nil if it still runs after `limit`.
  func wait(within limit: Duration) -> ProcessEnding? {
    let deadline = ContinuousClock.now + limit
    while process.isRunning {
      if ContinuousClock.now > deadline { return nil }
      Thread.sleep(forTimeInterval: 0.05)
    }
    return process.terminationReason == .exit ? .exited(process.terminationStatus) : .signalled(process.terminationStatus)
  }

  var standardError: String { (try? String(contentsOf: errorFile, encoding: .utf8)) ?? "" }

  /// Ends it whatever it is doing (after a failed test).
  func kill() {
    if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    if output >= 0 { close(output) }
    try? FileManager.default.removeItem(at: errorFile)
  }
}

/// Waits until `condition` holds, polling; records a failure and throws if it does not within `limit`.
func waitUntil(_ what: String, within limit: Duration, _ condition: () throws -> Bool) throws {
  let deadline = ContinuousClock.now + limit
  while try !condition() {
    guard ContinuousClock.now < deadline else {
      Issue.record("timed out waiting until \(what)")
      throw CancellationError()
    }
    Thread.sleep(forTimeInterval: 0.1)
  }
}

/// The ssh and rsync processes on this machine that name a path under `directory` (as every
/// ssh of a run names its control socket); anchored on the program, so not the shell asking.
func localSSH(under directory: TemporaryDirectory) throws -> String {
  try shell(["/bin/sh", "-c", "pgrep -af '^[^ ]*(ssh|rsync)[: ].*\(directory.path)' || true"]).stdout
}

/// The lab's audit log, one record per line.
private func auditRecords(_ lab: Lab) throws -> [[String: Any]] {
  let text = (try? String(contentsOfFile: lab.auditLog, encoding: .utf8)) ?? ""
  return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

/// What is left under `directory`, every level.
private func leftIn(_ directory: TemporaryDirectory) throws -> [String] {
  try FileManager.default.subpathsOfDirectory(atPath: directory.path).sorted()
}
