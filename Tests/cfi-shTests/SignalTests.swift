// The signal policy without hosts: a long server-side loop stopped by SIGTERM or by its
// stdout's reader going away ends with the signal's status and its audit record; runs that
// never connect leave no control directory. (With hosts: FleetTests/SignalFleetTests.)

import Foundation
import TestSupport
import Testing

@Suite struct SignalTests {
  /// About 100,000 lines, printed on the server: far more than a pipe holds.
  static let longRun = """
    let t = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    for a in t < for b in t < for c in t < for d in t < for e in t < print a b c d e > > > > >
    """

  @Test func sigtermStopsTheRunWithItsStatusAndItsRecord() throws {
    let run = try LoopRun()
    try run.readLine()
    kill(run.process.processIdentifier, SIGTERM)
    run.drain()
    try finish(run.process)
    #expect(run.process.terminationReason == .exit)
    #expect(run.process.terminationStatus == 143)
    let record = try #require(try run.runRecord())
    #expect(record["signal"] as? String == "SIGTERM")
    #expect(record["exitStatus"] as? Int == 143)
  }

  @Test func aClosedStdoutStopsTheRunAsSIGPIPEWouldWithItsRecord() throws {
    let run = try LoopRun()
    try run.readLine()
    run.closeOutput()
    try finish(run.process)
    #expect(run.process.terminationReason == .exit, "cfi-sh died of SIGPIPE")
    #expect(run.process.terminationStatus == 141)
    let record = try #require(try run.runRecord())
    #expect(record["signal"] as? String == "SIGPIPE")
  }

  /// Waiting for the lock, nothing has started: SIGTERM ends cfi-sh at once, with no record.
  @Test func sigtermWhileWaitingForTheLockEndsAtOnce() throws {
    let scratch = try TemporaryDirectory()
    let holder = try holdStoreLock(scratch.path + "/store")
    defer { close(holder) }
    let machine = try IsolatedMachine()
    let process = Process()
    let errors = Pipe()
    process.executableURL = Command.binary
    process.arguments = ["--store", scratch.path + "/store", "-c", #"print "ran""#]
    process.environment = machine.environment([:])
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    process.standardError = errors
    try process.run()
    var said = ""
    while !said.contains("waiting for another run") {
      let data = errors.fileHandleForReading.availableData
      guard !data.isEmpty else { break }
      said += String(decoding: data, as: UTF8.self)
    }
    #expect(said.contains("waiting for another run"))
    kill(process.processIdentifier, SIGTERM)
    try finish(process)
    #expect(process.terminationReason == .exit && process.terminationStatus == 143)
    let log = (try? String(contentsOfFile: machine.variables["CFI_AUDIT_LOG"]!, encoding: .utf8)) ?? ""
    #expect(!log.contains(#""record":"run""#))
  }

  /// Control directories are made on a run's first connection (the last case tries one, to
  /// a host no name service knows): each is gone at the end.
  @Test(arguments: [
    ["-n", "-c", #"on all < run "true" >"#],
    ["-c", #"on all < run undefined_name >"#],
    ["-c", #"print "no hosts here""#],
    ["-c", #"on host pc01 < run "true" >"#],
  ])
  func aRunLeavesNoControlDirectory(_ arguments: [String]) throws {
    let scratch = try TemporaryDirectory()
    let result = try Command.run(
      ["--store", scratch.path + "/store"] + arguments, environment: ["CFI_RUNTIME_DIR": scratch.path + "/run"])
    #expect(result.status != 130, "\(result.stderr)")
    let left = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path + "/run")) ?? []
    #expect(left == [])
  }

  @Test func aRunRefusedByTheLockLeavesNoControlDirectory() throws {
    let scratch = try TemporaryDirectory()
    let holder = try holdStoreLock(scratch.path + "/store")
    defer { close(holder) }
    let result = try Command.run(
      ["--store", scratch.path + "/store", "--no-wait", "-c", #"on all < run "true" >"#],
      environment: ["CFI_RUNTIME_DIR": scratch.path + "/run"])
    #expect(result.status == 75, "\(result.stderr)")
    #expect(!FileManager.default.fileExists(atPath: scratch.path + "/run"), "nothing made for a run that did not start")
  }
}

/// Holds the lock of the store at `store`, as another run would; closing the descriptor releases it.
private func holdStoreLock(_ store: String) throws -> Int32 {
  try FileManager.default.createDirectory(atPath: store + "/.cfi", withIntermediateDirectories: true)
  let holder = open(store + "/.cfi/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
  guard holder >= 0, flock(holder, LOCK_EX) == 0 else { throw POSIXError(.ENOLCK) }
  return holder
}

/// Waits for `process` to end; a watchdog fails the test (and kills it) if it has not within
/// 30 s, far beyond what stopping takes and short of what a run that was not stopped takes.
private func finish(_ process: Process) throws {
  let deadline = ContinuousClock.now + .seconds(30)
  while process.isRunning {
    guard ContinuousClock.now < deadline else {
      kill(process.processIdentifier, SIGKILL)
      Issue.record("cfi-sh did not stop")
      throw CancellationError()
    }
    Thread.sleep(forTimeInterval: 0.05)
  }
}

/// cfi-sh running `SignalTests.longRun`, its stdout a pipe the test reads (or closes).
private final class LoopRun {
  let process = Process()
  let machine: IsolatedMachine
  private var output: Int32

  init() throws {
    machine = try IsolatedMachine()
    var ends: [Int32] = [-1, -1]
    guard pipe(&ends) == 0 else { throw POSIXError(.EMFILE) }
    // Only cfi-sh may hold the write end, and nothing else the read end: closing it breaks the pipe.
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    output = ends[0]
    process.executableURL = Command.binary
    process.arguments = ["-c", SignalTests.longRun]
    process.environment = machine.environment([:])
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle(fileDescriptor: ends[1], closeOnDealloc: false)
    process.standardError = FileHandle.nullDevice
    try process.run()
    close(ends[1])
  }

  deinit {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    if output >= 0 { close(output) }
  }

  /// Reads until the first newline: the run has started.
  func readLine() throws {
    var byte: UInt8 = 0
    while read(output, &byte, 1) == 1 { if byte == UInt8(ascii: "\n") { return } }
    throw POSIXError(.EPIPE)
  }

  /// Reads everything up to the end, so the run never blocks on a full pipe.
  func drain() {
    var buffer = [UInt8](repeating: 0, count: 65536)
    while read(output, &buffer, buffer.count) > 0 {}
  }

  func closeOutput() {
    close(output)
    output = -1
  }

  /// The audit log's record of the run.
  func runRecord() throws -> [String: Any]? {
    let text = try String(contentsOfFile: machine.variables["CFI_AUDIT_LOG"]!, encoding: .utf8)
    return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
      .last { $0["record"] as? String == "run" }
  }
}
