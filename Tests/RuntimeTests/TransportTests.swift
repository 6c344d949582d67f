// LocalTransport against the conformance suite every transport passes, and the
// ActionExecutor's handling of what a transport reports, on a RecordingTransport.

import Foundation
import TestSupport
import Testing

@testable import Runtime

@Suite struct TransportTests {
  /// Under each shell a host may run the wrapper with: root's login shell (bash), and dash,
  /// Debian's `/bin/sh`. `true` stands for a local process that exits 0 running nothing.
  @Test(arguments: ["sh", "dash", "bash"]) func localTransportConforms(shell: String) async {
    let transport = LocalTransport(shell: shell)
    let failures = await TransportConformance.failures(
      of: transport, on: Runtime.Host(name: "localhost"), silent: LocalTransport(shell: "true"))
    await transport.shutdown()
    #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
  }

  /// The status report is found from the end, under its own tag only, and taken out byte
  /// for byte: what came after it (a background process's late output) stays.
  @Test func theExitReportIsTakenOutOfStderr() {
    let report = "\ncfi-exit-0a1b"
    func take(_ stderr: String) -> String? {
      ExitReport.take(from: stderr, tag: "cfi-step-0a1b").map { "\($0.status) \($0.stderr)" }
    }
    #expect(take("err\r" + report + " 3\n") == "3 err\r")
    #expect(take(report + " 0\n") == "0 ")
    #expect(take("a" + report + " 255\nlate") == "255 alate")
    #expect(take(report + " 1\nb" + report + " 2\n") == "2 " + report + " 1\nb")
    #expect(take("x" + report + " 2\n" + report + " 9") == "2 x" + report + " 9")
    for stderr in ["", "err\n", report + " 0", report + " 256\n", report + " \n", report + " -1\n", "\ncfi-exit-ffff 0\n"] {
      #expect(take(stderr) == nil, "\(stderr.debugDescription)")
    }
  }

  /// Ctrl-C can overtake a command on its way to the host: the kill leaves a stop mark, and a
  /// command arriving after it does not start (and takes the mark away).
  @Test func aKillThatComesFirstKeepsTheCommandFromStarting() async throws {
    let tag = RemoteCommand.newTag()
    let kill = try await LocalProcess.run("sh", ["-c", RemoteCommand.killScript(tag: tag)])
    #expect(kill.status == 0)
    let command = RemoteCommand(.script("echo started"), timeout: nil, connectTimeout: .seconds(1))
    let late = try await LocalProcess.run("sh", ["-c", command.wrapped(tag: tag)])
    #expect(late.status == 130 && late.stdout.isEmpty)
    #expect(!FileManager.default.fileExists(atPath: RemoteCommand.stopMark(tag)))
  }

  /// A command line can be read by anyone on the machine: a script holding a hash goes on
  /// stdin, before the command's own input, and runs as it would from the command line
  /// (backslashes, newlines, its exit status), under every shell a host may have.
  @Test(arguments: ["sh", "dash", "bash"]) func aScriptHoldingAHashTravelsOnStandardInput(shell: String) async {
    let hash = "$6$cfiSalt1$" + String(repeating: "h", count: 86)
    let script = "printf '%s\\n' 'user:\(hash)' 'a\\b'\ncat; exit 3"
    let command = RemoteCommand(.script(script), input: .text("the input\n"))
    let wrapped = command.wrapped(tag: RemoteCommand.newTag())
    #expect(!wrapped.contains(hash) && !wrapped.contains("cfiSalt1"))
    let result = await LocalTransport(shell: shell).run(command, on: Runtime.Host(name: "localhost"))
    #expect(result.termination == .exited(3))
    #expect(result.stdout == "user:\(hash)\na\\b\nthe input\n")
  }

  @Test func localTransportPushesWithRsync() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfi-push-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try FileManager.default.createDirectory(atPath: directory + "/from", withIntermediateDirectories: true)
    try "x\n".write(toFile: directory + "/from/a", atomically: true, encoding: .utf8)
    let push = Push(source: directory + "/from/", destination: directory + "/to it's/", options: ["-rt", "--mkpath", "--itemize-changes"])
    let result = await LocalTransport().push(push, to: Runtime.Host(name: "localhost"))
    #expect(result.termination == .exited(0))
    #expect(result.stdout.contains(">f+++++++++ a"))
    #expect(FileManager.default.fileExists(atPath: directory + "/to it's/a"))
  }

  /// The executor turns every ending a transport reports into the step's result, and
  /// remembers per run that a host's package lists were refreshed.
  @Test func executorShapesTransportEndings() async throws {
    let store = Store(root: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/Operations/store").path)
    let host = Runtime.Host(name: "pc01", group: "lab")
    let endings: [(CommandResult, StepResult)] = [
      (CommandResult(.unreachable(Unreachable(.connectTimeout, "connect timeout after 3s")), stderr: "ssh: timed out"),
       StepResult(status: .unreachable, errorOutput: "ssh: timed out", message: "connect timeout after 3s", reason: .connectTimeout)),
      (CommandResult(.notRun("host key of pc01 has changed")), StepResult(status: .failed, message: "host key of pc01 has changed")),
      (CommandResult(.interrupted(nil)), StepResult(status: .interrupted)),
      (CommandResult(.timedOut(124), stdout: "half"),
       StepResult(status: .failed, exitCode: 124, output: "half", message: "timed out after 7s (the command was killed on the host)")),
    ]
    for (reply, expected) in endings {
      let executor = ActionExecutor(transport: RecordingTransport { _, _ in reply }, store: store)
      var result = await executor.perform(.run(command: "x"), on: host, options: StepOptions(timeout: .seconds(7)))
      result.duration = .zero
      #expect(result == expected)
    }

    let transport = RecordingTransport { request, _ in
      guard case .run(let command) = request, command.script.contains("apt-get") else { return CommandResult(.exited(0)) }
      return CommandResult(.exited(0), stdout: "cfi:apt-updated\n")
    }
    let executor = ActionExecutor(transport: transport, store: store)
    for _ in 0..<2 { _ = await executor.perform(.install(packages: ["vim"]), on: host, options: StepOptions()) }
    await executor.startNewRun()
    _ = await executor.perform(.install(packages: ["vim"]), on: host, options: StepOptions())
    let updates = transport.requests(on: "pc01").map { request -> Bool in
      if case .run(let command) = request { command.script.contains(" update 2>&1") } else { false }
    }
    #expect(updates == [true, false, true])
    #expect(transport.newRunCount == 1)
  }
}
