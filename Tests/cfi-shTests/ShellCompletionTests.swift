// Shell completion: the scripts `make completions` writes (scripts/generate/completions, from
// `cfi-sh --generate-completion-script`) parse in their shells, and bash's completes what an
// admin types, driven through a pseudo-terminal like a user pressing Tab; `hosts --names`,
// the listing the scripts ask for host and group names.

import Foundation
import TestSupport
import Testing

@Suite struct ShellCompletionTests {
  /// The three scripts, written by the same script `make completions` runs.
  static func scripts() throws -> (directory: TemporaryDirectory, bash: String, zsh: String, fish: String) {
    let directory = try TemporaryDirectory()
    let result = try Command.run(
      [Command.binary.path, directory.path], executable: Command.packageRoot.appendingPathComponent("scripts/generate/completions"))
    try #require(result.status == 0, "\(result.stderr)")
    return (directory, directory.path + "/cfi-sh.bash", directory.path + "/_cfi-sh", directory.path + "/cfi-sh.fish")
  }

  /// A store with groups lab and office and a client list of three hosts in them.
  static func inventory(in directory: TemporaryDirectory) throws -> [String: String] {
    for group in ["lab", "office"] {
      try FileManager.default.createDirectory(atPath: directory.path + "/store/" + group, withIntermediateDirectories: true)
    }
    let clients = try directory.write("clients", "pc01 group=lab\npc02 group=lab\ndesk1 group=office\n")
    return ["CFI_STORE": directory.path + "/store", "CFI_CLIENTS": clients]
  }

  /// A shell's syntax check of a script (`bash -n`, `zsh -n`, `fish --no-execute`).
  static func syntaxCheck(_ shell: String, _ script: String) throws -> Command {
    let path = ["/usr/bin/" + shell, "/bin/" + shell].first { FileManager.default.isExecutableFile(atPath: $0) }
    let program = try #require(path, "\(shell) is not installed (make deps installs it)")
    return try Command.run([shell == "fish" ? "--no-execute" : "-n", script], executable: URL(fileURLWithPath: program))
  }

  @Test(arguments: ["bash", "zsh", "fish"]) func theScriptParsesInItsShell(shell: String) throws {
    let scripts = try Self.scripts()
    let script = shell == "bash" ? scripts.bash : shell == "zsh" ? scripts.zsh : scripts.fish
    let check = try Self.syntaxCheck(shell, script)
    #expect(check.status == 0, "\(check.stderr)")
    let text = try String(contentsOfFile: script, encoding: .utf8)
    // What the scripts complete besides words: runbook files and names from `hosts --names`.
    #expect(text.contains("cfi-sh hosts --names"))
    #expect(text.contains("cfi"))
    for word in ["hosts", "accept", "deliver", "run", "--limit", "--check"] { #expect(text.contains(word), "\(shell): \(word)") }
  }

  @Test func namesListsHostsThenGroupsAndNeverBrowses() throws {
    let directory = try TemporaryDirectory()
    let environment = try Self.inventory(in: directory)
    let result = try Command.run(["hosts", "--names"], environment: environment)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout == "desk1\npc01\npc02\n@lab\n@office\n")
    let pending = try Command.run(["hosts", "--names", "--pending"], environment: environment)
    #expect(pending.status == 0, "\(pending.stderr)")
    #expect(pending.stdout == "")
  }

  /// Types `line` then Tab at an interactive bash with cfi-sh's completion loaded, and returns
  /// the words the line became (bash prints them as [word] each).
  static func complete(_ line: String, in terminal: PseudoTerminal) throws -> String {
    // Ctrl-A, a printf before the completed words, Ctrl-E, Enter: the words come back in
    // brackets, which the echo of the typed line itself never shows.
    terminal.send(line + "\t\u{1}printf '[%s]' \u{5}; echo\r")
    let output = try terminal.expect("\nREADY> ")
    let printed = output.split(separator: "\n").last { $0.hasPrefix("[") } ?? ""
    return String(printed)
  }

  @Test func bashCompletesSubcommandsRunbooksHostsAndGroupsAtATerminal() throws {
    let scripts = try Self.scripts()
    let directory = try TemporaryDirectory()
    var environment = try Self.inventory(in: directory)
    try directory.write("site.cfi", "print 1\n")
    try directory.write("sitemap.txt", "")
    environment["PS1"] = "READY> "
    environment["HISTFILE"] = "/dev/null"
    // The binary under test is the cfi-sh the scripts run (hosts --names).
    environment["PATH"] = Command.binary.deletingLastPathComponent().path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    let terminal = try PseudoTerminal(
      URL(fileURLWithPath: "/bin/bash"), arguments: ["--norc", "--noprofile", "-i"], environment: environment)
    try terminal.expect("READY> ")
    terminal.sendLine("cd \(directory.path) && source \(scripts.bash)")
    try terminal.expect("\nREADY> ")

    #expect(try Self.complete("cfi-sh hos", in: terminal) == "[cfi-sh][hosts]")
    #expect(try Self.complete("cfi-sh hosts acc", in: terminal) == "[cfi-sh][hosts][accept]")
    #expect(try Self.complete("cfi-sh run @l", in: terminal) == "[cfi-sh][run][@lab]")
    #expect(try Self.complete("cfi-sh run de", in: terminal) == "[cfi-sh][run][desk1]")
    #expect(try Self.complete("cfi-sh --limit @o", in: terminal) == "[cfi-sh][--limit][@office]")
    #expect(try Self.complete("cfi-sh --check si", in: terminal) == "[cfi-sh][--check][site.cfi]")
    #expect(try Self.complete("cfi-sh hosts forget pc0", in: terminal) == "[cfi-sh][hosts][forget][pc0]")
    #expect(try Self.complete("cfi-sh --no-dis", in: terminal) == "[cfi-sh][--no-discovery]")
    terminal.endOfInput()
    _ = try terminal.waitForExit()
  }
}
