// Test support shared by the test targets: running the built binary and
// other programs, temporary directories.

import Foundation

/// Runs the built cfi-sh with arguments and optional stdin.
public struct Command {
  public init(status: Int32, stdout: String, stderr: String) {
    self.status = status
    self.stdout = stdout
    self.stderr = stderr
  }

  public var status: Int32
  public var stdout: String
  public var stderr: String

  /// The package's root directory (tests run from anywhere).
  public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  /// The cfi-sh binary next to this test bundle.
  public static let binary: URL = {
    var directory = Bundle.main.bundleURL
    for _ in 0..<3 {
      let candidate = directory.appendingPathComponent("cfi-sh")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
      directory.deleteLastPathComponent()
    }
    return Command.packageRoot.appendingPathComponent(".build/debug/cfi-sh")
  }()

  /// Runs `executable` (cfi-sh by default) and collects its output and status. It runs on an
  /// `IsolatedMachine` (then `environment`), unless `isolated` is false: only for programs
  /// that must see this machine as it is (the lab script, which runs its hosts' own cfi-sh).
  public static func run(
    _ arguments: [String], stdin: String? = nil, executable: URL = binary, environment: [String: String] = [:],
    isolated: Bool = true, directory: String? = nil
  ) throws -> Command {
    let machine = isolated ? try IsolatedMachine() : nil
    defer { withExtendedLifetime(machine) {} }
    let process = Process()
    process.executableURL = executable
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.arguments = arguments
    process.environment =
      machine?.environment(environment) ?? ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    let stderrData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Command(
      status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
      stderr: String(decoding: stderrData, as: UTF8.self))
  }
}

/// A temporary directory removed at the end of the test.
public final class TemporaryDirectory: Sendable {
  public let path: String
  public init() throws {
    // Short: cfi-sh puts its ssh control sockets under CFI_RUNTIME_DIR (or TMPDIR) only while
    // the path stays short (sun_path is 108 bytes), and tests that point it here must see them.
    path = NSTemporaryDirectory() + "cfi-t-" + UUID().uuidString.prefix(13)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  @discardableResult
  public func write(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
    let file = path + "/" + name
    try FileManager.default.createDirectory(
      atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: file, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
    return file
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
}


/// A program started in the background; `finish()` waits for it and collects its output.
public final class RunningCommand {
  private let process = Process()
  private let machine: IsolatedMachine
  private let stdoutFile: URL
  private let stderrFile: URL

  /// Starts `executable` (cfi-sh by default), on an `IsolatedMachine` and then `environment`,
  /// with its output going to temporary files.
  public init(_ arguments: [String], executable: URL = Command.binary, environment: [String: String] = [:]) throws {
    machine = try IsolatedMachine()
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("cfi-run-\(UUID().uuidString)")
    stdoutFile = base.appendingPathExtension("out")
    stderrFile = base.appendingPathExtension("err")
    _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
    _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
    process.executableURL = executable
    process.arguments = arguments
    process.environment = machine.environment(environment)
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
    process.standardError = try FileHandle(forWritingTo: stderrFile)
    try process.run()
  }

  /// Sends SIGINT, as Ctrl-C would.
  public func interrupt() { process.interrupt() }

  /// Its process id, and whether it still runs: for a watchdog, or a signal of the test's choice.
  public var processIdentifier: Int32 { process.processIdentifier }
  public var isRunning: Bool { process.isRunning }

  /// Waits for the program to end.
  public func finish() -> Command {
    process.waitUntilExit()
    defer {
      try? FileManager.default.removeItem(at: stdoutFile)
      try? FileManager.default.removeItem(at: stderrFile)
    }
    return Command(
      status: process.terminationStatus,
      stdout: (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "",
      stderr: (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "")
  }
}
