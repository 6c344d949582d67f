// End-to-end tests of the cfi-sh binary: how it reads runbooks, what it prints, its exit
// statuses. (Runs on real hosts are the fleet tests' business.)

import Foundation
import TestSupport
import Testing

@Suite struct CommandTests {
  /// A store that does not exist, inside a directory of the test's own (a run takes the
  /// store's lock, which creates `STORE/.cfi`: never outside the test's files).
  let scratch = try! TemporaryDirectory()
  var emptyStore: String { "--store=\(scratch.path)/no-store" }

  @Test func runsTextGivenWithC() throws {
    let result = try Command.run([emptyStore, "-c", #"print "hello" args"#, "a", "b"])
    #expect(result.status == 0)
    #expect(result.stdout == "hello a b\n")
  }

  /// An unknown group in a store that is not there: the store is what is wrong.
  @Test func aMissingStoreIsSaidRatherThanAnUnknownGroup() throws {
    let result = try Command.run([emptyStore, "-n", "--no-discovery", "-c", #"on group lab < run "x" >"#])
    #expect(result.status == 1)
    #expect(result.stderr.contains("unknown group 'lab'; the store directory \(scratch.path)/no-store does not exist"), "\(result.stderr)")
  }

  @Test func syntaxCheckWithJSONWritesEachDiagnosticAndTheCountsAsJSON() throws {
    let directory = try TemporaryDirectory()
    let file = try directory.write("bad.cfi", "on all < run \"x\" y\n  cp \"a\"\n>\n")
    let result = try Command.run([emptyStore, "-n", "--json", "--no-discovery", file])
    #expect(result.status == 1)
    let objects = try result.stdout.split(separator: "\n").map {
      try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
    #expect(objects.map { $0["event"] as? String } == ["diagnostic", "diagnostic", "diagnostics_end"])
    #expect(objects[0]["file"] as? String == file)
    #expect(objects[0]["line"] as? Int == 1 && objects[0]["column"] as? Int == 14)
    #expect(objects[0]["id"] as? String == "bad-argument-count")
    #expect(objects[1]["line"] as? Int == 2 && objects[1]["id"] as? String == "unknown-statement")
    #expect(objects[2]["errors"] as? Int == 2 && objects[2]["warnings"] as? Int == 0)
    let clean = try Command.run([emptyStore, "-n", "--json", "--no-discovery", "-c", #"print "ok""#])
    #expect(clean.status == 0)
    #expect(clean.stdout == #"{"errors":0,"event":"diagnostics_end","not_shown":0,"warnings":0}"# + "\n")
  }
  /// A bare file name is a log in the current directory (there is no directory to make).
  @Test func anAuditLogNamedWithoutADirectoryIsMadeInTheCurrentOne() throws {
    let directory = try TemporaryDirectory()
    let result = try Command.run(
      [emptyStore, "--audit-log", "audit.log", "-c", #"print "logged""#], directory: directory.path)
    #expect(result.status == 0, "\(result.stderr)")
    let log = try String(contentsOfFile: directory.path + "/audit.log", encoding: .utf8)
    #expect(log.contains(#""record":"run""#))
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
    let result = try Command.run([emptyStore, file, "x", "--", "--check", "y"], environment: ["CFI_TEST_VALUE": "seen"])
    #expect(result.status == 0, "\(result.stderr)")
    // Everything after `--` is the runbook's; words before it that are no option of cfi-sh too.
    #expect(result.stdout == "3 x --check y seen\n")
    let unknownOption = try Command.run([emptyStore, file, "--frobnicate", "-x"], environment: ["CFI_TEST_VALUE": "seen"])
    #expect(unknownOption.stdout == "2 --frobnicate -x seen\n")
  }

  /// `cfi-sh site.cfi --check` must not run for real: an option of cfi-sh's after the runbook
  /// is refused (64), with the two ways to say what was meant.
  @Test(arguments: [
    ["--check"], ["-n"], ["--json"], ["x", "-v"], ["-qv"], ["--store=/tmp"], ["--parallel", "4"], ["-p8"], ["--help"],
    ["--syntax-check"], ["--no-discovery"],
  ])
  func cfiShOptionsAfterTheRunbookAreRefused(_ after: [String]) throws {
    let directory = try TemporaryDirectory()
    let file = try directory.write("book.cfi", #"print "ran""# + "\n")
    let result = try Command.run([emptyStore, file] + after)
    #expect(result.status == 64)
    #expect(result.stdout == "", "nothing ran")
    let option = after.first { $0.hasPrefix("-") }!
    #expect(result.stderr.contains("cfi-sh: '\(option)' after the runbook is an option of cfi-sh"), "\(result.stderr)")
    #expect(result.stderr.contains("to pass '\(option)' to the runbook, write: cfi-sh \(file) -- \(option)"), "\(result.stderr)")
  }

  @Test func cfiShOptionsAfterCommandTextOrStandardInputAreRefusedToo() throws {
    let text = try Command.run([emptyStore, "-c", #"print "ran""#, "a", "--check"])
    #expect(text.status == 64)
    #expect(text.stdout == "")
    #expect(text.stderr.contains("to pass '--check' to the runbook, write: cfi-sh -c TEXT -- --check"), "\(text.stderr)")
    for words in [["--", "a", "--check"], ["a", "--", "--check"], ["--", "--check"]] {
      let passed = try Command.run([emptyStore, "--audit-log", "none", "-c", "print args"] + words)
      #expect(passed.status == 0, "\(words): \(passed.stderr)")
      #expect(passed.stdout == words.filter { $0 != "--" }.joined(separator: " ") + "\n")
    }
    let stdin = try Command.run([emptyStore, "-", "--check"], stdin: #"print "ran""#)
    #expect(stdin.status == 64)
    #expect(stdin.stdout == "")
  }

  /// The list of cfi-sh's options that are refused after the runbook is the one `--help` shows.
  @Test func theOptionsRefusedAfterTheRunbookAreThoseOfTheHelp() throws {
    let help = try Command.run(["--help"]).stdout
    let shown = Set(help.split(whereSeparator: { " ,\n".contains($0) }).compactMap { word -> String? in
      let name = String(word.prefix { $0 != "=" && $0 != "<" })
      guard name.range(of: #"^(-[a-z]|--[a-z][a-z-]+)$"#, options: .regularExpression) != nil else { return nil }
      return name
    })
    let refused = Set(shown.filter { try! Command.run([emptyStore, "-c", "print 1", "x", $0, "1"]).status == 64 })
    #expect(refused == shown)
    #expect(shown.isSuperset(of: ["--check", "-n", "--syntax-check", "--json", "-c", "--help", "--version", "-p"]))
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

  /// A run that did nothing is not a success: a block whose target matched no host warns,
  /// naming the target, in every verbosity, and the exit status gets bit 8.
  @Test(arguments: [[], ["-q"], ["-v"]])
  func aBlockThatMatchesNoHostWarnsAndExitsWith8(_ verbosity: [String]) throws {
    let result = try Command.run(
      [emptyStore, "--no-discovery", "--audit-log", "none"] + verbosity + ["-c", "on all < run \"true\" >\nprint \"after\""])
    #expect(result.status == 8, "\(result.stderr)")
    #expect(result.stdout.contains("warning: on all matched no host  <command line>:1:1\n"), "\(result.stdout)")
    #expect(result.stdout.contains("after\n"), "the run goes on")
  }

  @Test func aBlockThatMatchesNoHostIsAJSONEvent() throws {
    let result = try Command.run(
      [emptyStore, "--no-discovery", "--audit-log", "none", "--json", "-c", "on all < run \"true\" >"])
    #expect(result.status == 8)
    let events = try result.stdout.split(separator: "\n").map {
      try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
    #expect(events.map { $0["event"] as? String } == ["run_started", "block_started", "no_hosts", "block_finished", "run_finished"])
    #expect(events[2]["target"] as? String == "on all")
    #expect(events[2]["location"] as? String == "<command line>:1:1")
  }

  /// No avahi to ask (here: a bus that does not exist): every run that relies on discovery
  /// says so, without -v; one that turned it off does not.
  @Test func aRunWithoutDiscoverySaysSoWithoutVerbose() throws {
    let noBus = ["DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/cfi-test-bus"]
    let relying = try Command.run([emptyStore, "--audit-log", "none", "-c", "print 1"], environment: noBus)
    #expect(relying.status == 0, "\(relying.stderr)")
    #expect(relying.stderr.hasPrefix("cfi-sh: no discovery: "), "\(relying.stderr)")
    #expect(relying.stderr.components(separatedBy: "no discovery").count == 2, "said once")
    let verbose = try Command.run([emptyStore, "--audit-log", "none", "-v", "-c", "print 1"], environment: noBus)
    #expect(verbose.stderr.components(separatedBy: "no discovery").count == 2, "said once with -v too: \(verbose.stderr)")
    let off = try Command.run([emptyStore, "--audit-log", "none", "--no-discovery", "-c", "print 1"], environment: noBus)
    #expect(!off.stderr.contains("no discovery"))
    let offInRunbook = try Command.run([emptyStore, "--audit-log", "none", "-c", "set discovery = off\nprint 1"], environment: noBus)
    #expect(!offInRunbook.stderr.contains("no discovery"))
  }

  /// `-n` warns, without failing, about host names that no source of the inventory knows
  /// (they would be reached by their name alone); a real run does not check them.
  @Test func syntaxCheckWarnsAboutHostsNoSourceKnows() throws {
    let directory = try TemporaryDirectory()
    try FileManager.default.createDirectory(atPath: directory.path + "/store/lab", withIntermediateDirectories: true)
    let clients = try directory.write("clients", "pc01 group=lab\npc02 group=lab\n")
    let book = try directory.write(
      "book.cfi",
      """
      on host pc01 < run "a" >
      on host pc04, pc[01-03] except pc09 < run "b" >
      group extra = pc01, web1
      on host @lab < run "c" >

      """)
    let result = try Command.run([
      "--store", directory.path + "/store", "-i", clients, "--no-discovery", "--audit-log", "none", "-n", book,
    ])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout == "")
    let file = book
    #expect(
      result.stderr == """
        \(file):2:9: warning: no source of the inventory knows pc04; it would be reached by its name alone (the client list, dsh groups, known clients and discovery do not name it)
         2 | on host pc04, pc[01-03] except pc09 < run "b" >
           |         ^~~~
        \(file):2:15: warning: no source of the inventory knows pc03; it would be reached by its name alone (the client list, dsh groups, known clients and discovery do not name it)
         2 | on host pc04, pc[01-03] except pc09 < run "b" >
           |               ^~~~~~~~~
        \(file):3:21: warning: no source of the inventory knows web1; it would be reached by its name alone (the client list, dsh groups, known clients and discovery do not name it)
         3 | group extra = pc01, web1
           |                     ^~~~

        """)
  }

  /// `-n` warns when a store file that a block of `on all` or `on host` copies is in the
  /// trees of only some of the groups its hosts are in (those hosts would fail).
  @Test func syntaxCheckWarnsAboutStoreFilesOnlySomeGroupsHave() throws {
    let directory = try TemporaryDirectory()
    try directory.write("store/lab/etc/motd", "hello\n")
    try FileManager.default.createDirectory(atPath: directory.path + "/store/office", withIntermediateDirectories: true)
    let clients = try directory.write("clients", "pc01 group=lab\npc02 group=lab\ndesk1 group=office\n")
    let book = try directory.write(
      "book.cfi",
      """
      on all < copy "etc/motd" >
      on host pc[01-02] < copy "etc/motd" >
      on all except @office < copy "etc/motd" >
      on host pc01, desk1 < script "setup.sh" >

      """)
    let result = try Command.run([
      "--store", directory.path + "/store", "-i", clients, "--no-discovery", "--audit-log", "none", "-n", book,
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let warnings = result.stderr.split(separator: "\n").filter { $0.contains("warning:") }
    #expect(
      warnings == [
        "\(book):1:15: warning: 'etc/motd' is in the store of lab but not of office: this block's hosts of office would fail",
        "\(book):4:30: warning: 'setup.sh' is in the store of none of this block's groups (lab, office): its hosts would fail",
      ], "\(result.stderr)")
  }

  @Test func helpDocumentsExitStatuses() throws {
    let result = try Command.run(["--help"])
    #expect(result.status == 0)
    #expect(result.stdout.contains("EXIT STATUS"))
    #expect(result.stdout.contains("-n, --syntax-check"))
    #expect(result.stdout.contains("8    (bit) an 'on' block matched no host"))
  }
}
