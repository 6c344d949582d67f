// End-to-end tests of the cfi-sh binary: how it reads runbooks, what it prints, its exit
// statuses. (Runs on real hosts are the fleet tests' business.)

import Foundation
import TestSupport
import Testing

@Suite struct CommandTests {
  let emptyStore = "--store=/nonexistent-cfi-store"

  @Test func runsTextGivenWithC() throws {
    let result = try Command.run([emptyStore, "-c", #"print "hello" args"#, "a", "b"])
    #expect(result.status == 0)
    #expect(result.stdout == "hello a b\n")
  }

  @Test func runsStandardInputWhenItIsNotATerminal() throws {
    let result = try Command.run([emptyStore], stdin: "let x = 'raw $x'\nprint x\n")
    #expect(result.status == 0)
    #expect(result.stdout == "raw $x\n")
  }

  @Test func runsStandardInputWithDash() throws {
    let result = try Command.run([emptyStore, "-", "one"], stdin: "print args\n")
    #expect(result.stdout == "one\n")
  }

  @Test func runsAFileWithItsArgumentsAndEnvironment() throws {
    let directory = try TemporaryDirectory()
    let file = try directory.write("book.cfi", #"print len(args) args env("CFI_TEST_VALUE")"#)
    let result = try Command.run([emptyStore, file, "--check", "x"], environment: ["CFI_TEST_VALUE": "seen"])
    #expect(result.status == 0)
    // Options after the runbook belong to the runbook.
    #expect(result.stdout == "2 --check x seen\n")
  }

  @Test func runsAShebangScript() throws {
    let directory = try TemporaryDirectory()
    // env -S passes cfi-sh's path and an option; the first line is a comment to the language.
    let script = try directory.write(
      "hello.cfi", "#!/usr/bin/env -S \(Command.binary.path) \(emptyStore)\nprint \"from shebang\" args\n", mode: 0o755)
    let result = try Command.run(["arg1"], executable: URL(fileURLWithPath: script))
    #expect(result.status == 0)
    #expect(result.stdout == "from shebang arg1\n")
  }

  @Test func syntaxErrorsAreReportedWithPositionAndNothingRuns() throws {
    let directory = try TemporaryDirectory()
    let file = try directory.write("bad.cfi", "print \"before\"\non grup lab < run \"x\" >\ninstal \"htop\"\n")
    let result = try Command.run([emptyStore, file])
    #expect(result.status == 1)
    #expect(result.stdout == "")
    #expect(result.stderr.contains("bad.cfi:2:4: error: expected 'all', 'group' or 'host' after 'on', found 'grup'; did you mean 'group'?"))
    #expect(result.stderr.contains(" 2 | on grup lab < run \"x\" >\n   |    ^~~~\n"))
    #expect(result.stderr.contains("bad.cfi:3:1: error: unknown statement 'instal'; did you mean 'install'?"))
    #expect(result.stderr.contains("2 errors; nothing was run"))
  }

  @Test func syntaxCheckRunsNothing() throws {
    let result = try Command.run([emptyStore, "-n", "-c", #"print "should not print""#])
    #expect(result.status == 0)
    #expect(result.stdout == "")
  }

  /// Duration options read the language's literals (one codec), and a bare number as seconds.
  @Test func durationOptionsReadDurationLiterals() throws {
    for good in ["2d", "250ms", "30"] {
      let result = try Command.run([emptyStore, "--timeout", good, "--connect-timeout", "5s", "-n", "-c", "print 1"])
      #expect(result.status == 0, "\(good): \(result.stderr)")
    }
    let bad = try Command.run([emptyStore, "--timeout", "5min", "-n", "-c", "print 1"])
    #expect(bad.status != 0)
    #expect(bad.stderr.contains("--timeout: '5min' is not a duration; write a whole number and a unit: ms, s, m, h or d (30s, 5m), or a number of seconds"))
  }

  @Test func unknownGroupIsARunbookError() throws {
    let result = try Command.run([emptyStore, "-n", "-c", "on group lab < run \"uptime\" >"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("<command line>:1:10: error: unknown group 'lab'"))
  }

  @Test func groupsComeFromTheStoreAndTheClientList() throws {
    let directory = try TemporaryDirectory()
    try FileManager.default.createDirectory(atPath: directory.path + "/store/lab", withIntermediateDirectories: true)
    let clients = try directory.write("clients", "pc01 group=lab\npc02 group=office # not in the store: unknown\n")
    let result = try Command.run([
      "--store", directory.path + "/store", "-i", clients, "-n", "-c", "on group lab < run \"x\" >\non group unknown < run \"y\" >",
    ])
    #expect(result.status == 0, "\(result.stderr)")
  }

  @Test func runtimeErrorOnTheServerStopsTheRun() throws {
    let result = try Command.run([emptyStore, "-c", "print \"one\"\nfor x in \"not a list\" < print x >\nprint \"two\""])
    #expect(result.status == 1)
    #expect(result.stdout == "one\n")
    #expect(result.stderr.contains("<command line>:2:10: error: 'for' needs a list to walk, not a string"))
  }

  @Test func usageErrorsExitWith64() throws {
    #expect(try Command.run(["--parallel", "0", "-c", "print 1"]).status == 64)
    #expect(try Command.run(["--no-such-option"]).status == 64)
    #expect(try Command.run(["--timeout", "soon", "-c", "print 1"]).status == 64)
    let missing = try Command.run([emptyStore, "/nonexistent/book.cfi"])
    #expect(missing.status == 64)
    #expect(missing.stderr == "cfi-sh: cannot read runbook '/nonexistent/book.cfi': No such file or directory\n")
  }

  @Test func badClientListIsReportedWithItsLine() throws {
    let directory = try TemporaryDirectory()
    let clients = try directory.write("clients", "pc01\npc02 colour=blue\n")
    let result = try Command.run([emptyStore, "-i", clients, "-c", "print 1"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("clients:2: error: unknown key 'colour'"))
  }

  @Test func jsonEventsAreOneObjectPerLine() throws {
    let result = try Command.run([emptyStore, "--json", "-c", #"print "hi""#])
    #expect(result.status == 0)
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.count == 3)
    let events = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    #expect(events.map { $0["event"] as? String } == ["run_started", "message", "run_finished"])
    #expect(events[1]["message"] as? String == "hi")
  }

  @Test func helpDocumentsExitStatuses() throws {
    let result = try Command.run(["--help"])
    #expect(result.status == 0)
    #expect(result.stdout.contains("EXIT STATUS"))
    #expect(result.stdout.contains("-n, --syntax-check"))
  }
}
