// The conformance suite every transport passes: LocalTransport in the unit tests,
// SSHTransport on the lab in the fleet tests. Each check returns what it found wrong (an
// empty list is a pass), so that the suites around it report with their own test library.
// A command's exit status is the one its wrapper reports from the host: a local process (ssh,
// sh) that ends without that report means the command may not have run, never success.

import Foundation
import Runtime

public enum TransportConformance {
  /// Every check, on `host` through `transport`: what failed, with the check's name.
  /// `silent` is the same transport made to end its local process with status 0 without
  /// running the command (for ssh: an ssh_config with `SessionType none`).
  public static func failures(of transport: any Transport, on host: Runtime.Host, silent: any Transport) async -> [String] {
    let checks: [(String, @Sendable (any Transport, Runtime.Host) async -> String?)] = [
      ("exit codes", exitCodes), ("stdout and stderr", separateStreams), ("stdin secret", secretOnStdin),
      ("timeout kills the process group", timeoutKillsProcessGroup), ("invalid UTF-8", invalidUTF8),
      ("10 MB of output", largeOutput), ("1 MiB of input", largeInput), ("output over the limit stops the command", outputOverTheLimit),
      ("an interrupt ends the command where it runs", interruptEndsTheCommand),
      ("stderr kept byte for byte", stderrKeptExactly), ("a command that closes its stderr", closedStderr),
      ("output after the command ended", outputAfterTheEnd), ("a signal ends the command", signalled),
      ("a pull copies a file and a tree into a private directory", pullCopies),
    ]
    var failures: [String] = []
    for (name, check) in checks {
      if let failure = await check(transport, host) { failures.append("\(name): \(failure)") }
    }
    if let failure = await noStatusIsNotSuccess(silent, host) {
      failures.append("a local process ending 0 without running the command: \(failure)")
    }
    return failures
  }

  public static func run(_ transport: any Transport, _ host: Runtime.Host, _ script: String, input: RemoteCommand.Input? = nil, timeout: Duration? = nil) async -> CommandResult {
    await transport.run(RemoteCommand(.script(script), input: input, timeout: timeout, connectTimeout: .seconds(10)), on: host)
  }

  static func exitCodes(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    for status: Int32 in [0, 1, 3, 42, 125, 255] {
      let result = await run(transport, host, "exit \(status)")
      if result.termination != .exited(status) { return "exit \(status) gave \(result.termination)" }
    }
    return nil
  }

  static func separateStreams(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let result = await run(transport, host, "echo out; echo err >&2; echo more")
    return result.stdout == "out\nmore\n" && result.stderr == "err\n"
      ? nil : "stdout \(result.stdout.debugDescription), stderr \(result.stderr.debugDescription)"
  }

  /// The secret reaches the command's stdin, and no process's argv where the command runs.
  static func secretOnStdin(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let secret = "s3cret-\(UUID().uuidString)"
    // The process list is searched by awk through its environment, so that no argv holds the secret.
    let script = """
      IFS= read -r s; printf '%s\\n' "$s"; f=$(mktemp); ps -eo args >"$f"; \
      S="$s" awk 'index($0, ENVIRON["S"]) { n++ } END { print n + 0 }' "$f"; rm -f "$f"
      """
    let result = await run(transport, host, script, input: .secret(Secret(secret + "\n")))
    return result.stdout == "\(secret)\n0\n" ? nil : "got \(result.termination), stdout \(result.stdout.debugDescription)"
  }

  /// A timeout ends the command and everything it started in the background: `timeout`'s
  /// TERM to the whole group was enough (124, not 137: its KILL 5 s later was not needed),
  /// and nothing of it is left. Not a bound on the wall time (a loaded test machine takes
  /// seconds to start a session): the status says which signal ended it.
  static func timeoutKillsProcessGroup(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let (marker, pattern) = marker()
    let result = await run(transport, host, "sh -c 'sleep 60; :' \(marker) & sh -c 'sleep 60; :' \(marker); wait", timeout: .seconds(1))
    guard result.termination == .timedOut(124) else { return "ended \(result.termination)" }
    return await gone(transport, host, pattern)
  }

  static func invalidUTF8(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let result = await run(transport, host, "printf 'a\\377b\\n'; printf 'c\\376\\n' >&2")
    return result.stdout == "a\u{FFFD}b\n" && result.stderr == "c\u{FFFD}\n"
      ? nil : "stdout \(result.stdout.debugDescription), stderr \(result.stderr.debugDescription)"
  }

  static func largeOutput(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let size = 10 << 20
    let result = await run(transport, host, "head -c \(size) /dev/zero | tr '\\0' x")
    return result.termination == .exited(0) && result.stdout.utf8.count == size && result.stdout.utf8.allSatisfy { $0 == UInt8(ascii: "x") }
      ? nil : "got \(result.termination) with \(result.stdout.utf8.count) bytes"
  }

  /// More input than a pipe holds reaches the command whole (a script or a secret travels
  /// this way), and a command that does not read its input still ends.
  static func largeInput(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let input = String(repeating: "0123456789abcdef", count: 1 << 16) + "end"
    let read = await run(transport, host, "wc -c; exit 3", input: .text(input))
    guard read.termination == .exited(3), read.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(input.utf8.count)" else {
      return "reading it: \(read.termination), stdout \(read.stdout.debugDescription)"
    }
    // More than ssh's channel window (2 MiB): the master stops taking it, then closes it.
    let ignored = await run(transport, host, "echo ignored", input: .text(String(repeating: input, count: 4)))
    guard ignored.termination == .exited(0), ignored.stdout == "ignored\n" else {
      return "not reading it: \(ignored.termination), stdout \(ignored.stdout.debugDescription)"
    }
    return nil
  }

  /// A fresh marker for a command's processes, and the pattern that finds them but not itself.
  static func marker() -> (marker: String, pattern: String) {
    let marker = "cfi-conformance-\(UUID().uuidString.prefix(8).lowercased())"
    return (marker, "[c]" + marker.dropFirst())
  }

  /// Waits until no process matches `pattern` where the command ran (a kill takes a moment);
  /// what is wrong if some stay.
  static func gone(_ transport: any Transport, _ host: Runtime.Host, _ pattern: String) async -> String? {
    for _ in 0..<20 {
      let left = await run(transport, host, "pgrep -f -- '\(pattern)' || true")
      if left.stdout.isEmpty { return nil }
      try? await Task.sleep(for: .milliseconds(250))
    }
    return "processes of the command are still running"
  }

  /// More output than the transport keeps: the step fails saying so, and nothing of the
  /// command is left running. (Over ssh the command is killed as soon as ssh stops; a local
  /// command is waited for, which is why it sleeps only a few seconds here.)
  static func outputOverTheLimit(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let (marker, pattern) = marker()
    let result = await run(transport, host, "head -c \(17 << 20) /dev/zero; sh -c 'sleep 3; :' \(marker)")
    guard case .notRun(let message) = result.termination, message.contains("larger than") else {
      return "ended \(result.termination)"
    }
    return await gone(transport, host, pattern)
  }

  /// Cancelling the task that runs a command ends it where it runs before `run` returns.
  static func interruptEndsTheCommand(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let (marker, pattern) = marker()
    // A child task, not `Task {}`: structured, it is cancelled and awaited with the check.
    return await withTaskGroup(of: CommandResult.self) { group -> String? in
      group.addTask { await run(transport, host, "sh -c 'sleep 60; :' \(marker)") }
      var started = false
      for _ in 0..<100 where !started {
        started = !(await run(transport, host, "pgrep -f -- '\(pattern)' || true")).stdout.isEmpty
        if !started { try? await Task.sleep(for: .milliseconds(100)) }
      }
      group.cancelAll()
      guard let result = await group.next(), started else { return "the command never started" }
      guard case .interrupted(nil) = result.termination else { return "ended \(result.termination)" }
      let left = await run(transport, host, "pgrep -f -- '\(pattern)' || true")
      return left.stdout.isEmpty ? nil : "the command still ran when run returned"
    }
  }

  /// The command's stderr reaches the result as it was written: no final newline, a final
  /// carriage return, and a line that looks like the status report of another command.
  static func stderrKeptExactly(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let cases: [(script: String, stderr: String, status: Int32)] = [
      ("printf out; printf 'one\\ntwo' >&2", "one\ntwo", 0),
      ("printf 'cr\\r' >&2; exit 2", "cr\r", 2),
      ("printf '\\ncfi-exit-0123 0\\n' >&2; exit 3", "\ncfi-exit-0123 0\n", 3),
    ]
    for (script, stderr, status) in cases {
      let result = await run(transport, host, script)
      guard result.termination == .exited(status), result.stderr == stderr else {
        return "\(script.debugDescription) gave \(result.termination), stderr \(result.stderr.debugDescription)"
      }
    }
    return nil
  }

  /// A command that closes or redirects its own stderr still has its exit status reported.
  static func closedStderr(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    for (script, status) in [("exec 2>&-; exit 7", Int32(7)), ("exec 2>/dev/null; echo hidden >&2; exit 0", 0)] {
      let result = await run(transport, host, script)
      guard result.termination == .exited(status), result.stderr.isEmpty else {
        return "\(script.debugDescription) gave \(result.termination), stderr \(result.stderr.debugDescription)"
      }
    }
    return nil
  }

  /// A command whose background process writes after the command itself has exited (once
  /// the shell that ran it is gone, a bounded wait so that a shell kept alive fails instead of
  /// hanging). Over ssh the late bytes arrive (ssh waits for the end of the remote stderr);
  /// LocalTransport ends with its shell, and they may be lost.
  public static let lateOutputScript = """
    p=$PPID; (i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
    printf late >&2; echo after) & printf early >&2; exit 4
    """

  /// Whatever of a background process's late output arrives, the status is the command's and
  /// nothing of its report shows.
  static func outputAfterTheEnd(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let result = await run(transport, host, lateOutputScript)
    return result.termination == .exited(4) && ["early", "earlylate"].contains(result.stderr)
      ? nil : "got \(result.termination), stdout \(result.stdout.debugDescription), stderr \(result.stderr.debugDescription)"
  }

  /// A command ended by a signal exits 128 + the signal's number.
  static func signalled(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let result = await run(transport, host, "kill -s KILL $$")
    return result.termination == .exited(137) ? nil : "got \(result.termination)"
  }

  /// A pull brings a host's file and directory into a local directory it makes owner-only
  /// (missing parents too), itemized; the same pull again changes nothing; a missing path
  /// is rsync's exit 23 with its message; a dry run writes nothing.
  static func pullCopies(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let made = await run(transport, host, "d=$(mktemp -d) && printf 'one\\n' >\"$d/file\" && mkdir \"$d/tree\" && printf two >\"$d/tree/x\" && echo \"$d\"")
    let remote = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    guard made.termination == .exited(0), remote.hasPrefix("/") else { return "cannot make the files to pull: \(made.termination)" }
    let local = NSTemporaryDirectory() + "cfi-pull-" + UUID().uuidString
    let failure = await pullChecks(transport, host, remote: remote, local: local)
    _ = await run(transport, host, "rm -rf -- '\(remote)'")
    try? FileManager.default.removeItem(atPath: local)
    return failure
  }

  static func pullChecks(_ transport: any Transport, _ host: Runtime.Host, remote: String, local: String) async -> String? {
    func pull(_ path: String, dryRun: Bool = false) async -> CommandResult {
      let options = ["-rlpt", "--itemize-changes", "--protect-args"] + (dryRun ? ["--dry-run"] : [])
      return await transport.pull(Pull(source: remote + path, destination: local + "/in/", options: options), from: host)
    }
    let dry = await pull("/file", dryRun: true)
    guard dry.termination == .exited(0), dry.stdout.contains(">f+++++++++ file"), !FileManager.default.fileExists(atPath: local)
    else { return "a dry run gave \(dry.termination), \(dry.stdout.debugDescription) or wrote" }
    for (path, item) in [("/file", ">f+++++++++ file"), ("/tree", ">f+++++++++ tree/x")] {
      let first = await pull(path)
      guard first.termination == .exited(0), first.stdout.contains(item) else {
        return "pulling \(path) gave \(first.termination), stdout \(first.stdout.debugDescription), stderr \(first.stderr.debugDescription)"
      }
      let again = await pull(path)
      guard again.termination == .exited(0), again.stdout.isEmpty else { return "pulling \(path) again gave \(again.stdout.debugDescription)" }
    }
    let file = try? String(contentsOfFile: local + "/in/file", encoding: .utf8)
    let tree = try? String(contentsOfFile: local + "/in/tree/x", encoding: .utf8)
    guard file == "one\n", tree == "two" else { return "pulled \(file.debugDescription) and \(tree.debugDescription)" }
    for directory in [local, local + "/in"] {
      let mode = (try? FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int) ?? -1
      if mode != 0o700 { return "\(directory) was made with mode \(String(mode, radix: 8)), not 700" }
    }
    let missing = await pull("/nosuch")
    guard missing.termination == .exited(23), missing.stderr.contains("No such file or directory") else {
      return "pulling a missing path gave \(missing.termination), stderr \(missing.stderr.debugDescription)"
    }
    return nil
  }

  /// A transport whose local side ends without the command having run (a local process
  /// exiting 0; over ssh, a "master" that serves no session) reports that nothing ran (for a
  /// local process: that no status came back), never an exit.
  static func noStatusIsNotSuccess(_ transport: any Transport, _ host: Runtime.Host) async -> String? {
    let result = await run(transport, host, "exit 0")
    guard case .notRun(let message) = result.termination,
      message.contains("no exit status came back") || message.contains("nothing ran")
    else {
      return "got \(result.termination)"
    }
    return nil
  }
}
