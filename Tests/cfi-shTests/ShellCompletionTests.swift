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

  /// What each test types, and the words the line must become: subcommands, options, option
  /// values and arguments from `hosts --names` (with '@'), runbooks.
  static let lines: [(typed: String, words: String)] = [
    ("cfi-sh hos", "[cfi-sh][hosts]"),
    ("cfi-sh hosts acc", "[cfi-sh][hosts][accept]"),
    ("cfi-sh run @l", "[cfi-sh][run][@lab]"),
    ("cfi-sh run de", "[cfi-sh][run][desk1]"),
    ("cfi-sh --limit @o", "[cfi-sh][--limit][@office]"),
    ("cfi-sh si", "[cfi-sh][site.cfi]"),
    ("cfi-sh --check si", "[cfi-sh][--check][site.cfi]"),
    ("cfi-sh hosts forget de", "[cfi-sh][hosts][forget][desk1]"),
    ("cfi-sh --no-dis", "[cfi-sh][--no-discovery]"),
  ]

  /// The environment of a shell completing in `directory` (an inventory, a runbook and a file
  /// that is not one), with the cfi-sh under test first in PATH (the scripts run it).
  static func shellEnvironment(_ directory: TemporaryDirectory) throws -> [String: String] {
    var environment = try Self.inventory(in: directory)
    try directory.write("site.cfi", "print 1\n")
    try directory.write("sitemap.txt", "")
    environment["PS1"] = "READY> "
    environment["HISTFILE"] = "/dev/null"
    environment["ZDOTDIR"] = directory.path
    environment["PATH"] = Command.binary.deletingLastPathComponent().path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    return environment
  }

  /// An interactive shell at a terminal, in `directory`, with `setup` run.
  static func shell(_ arguments: [String], in directory: TemporaryDirectory, setup: String) throws -> PseudoTerminal {
    let terminal = try PseudoTerminal(
      URL(fileURLWithPath: "/usr/bin/env"), arguments: arguments, environment: try shellEnvironment(directory))
    try terminal.expect("READY> ")
    terminal.sendLine("cd \(directory.path) && \(setup)")
    try terminal.expect("\nREADY> ")
    return terminal
  }

  @Test func bashCompletesAtATerminal() throws {
    let scripts = try Self.scripts()
    let directory = try TemporaryDirectory()
    let terminal = try Self.shell(["bash", "--norc", "--noprofile", "-i"], in: directory, setup: "source \(scripts.bash)")
    for (typed, words) in Self.lines { #expect(try Self.complete(typed, in: terminal) == words, "\(typed)") }
    terminal.endOfInput()
    _ = try terminal.waitForExit()
  }

  @Test func zshCompletesAtATerminal() throws {
    let scripts = try Self.scripts()
    let directory = try TemporaryDirectory()
    let terminal = try Self.shell(
      ["zsh", "-f", "-i"], in: directory,
      // No PROMPT_SP: it puts a mark and blanks, not a newline, before each prompt.
      setup: "unsetopt prompt_sp prompt_cr; fpath=(\(scripts.directory.path) $fpath); autoload -Uz compinit; compinit -u -d \(directory.path)/zcompdump")
    for (typed, words) in Self.lines { #expect(try Self.complete(typed, in: terminal) == words, "\(typed)") }
    terminal.sendLine("exit")
    _ = try terminal.waitForExit()
  }

  /// fish tells what it would complete (`complete -C LINE`): the first candidate's word.
  @Test func fishCompletes() throws {
    let scripts = try Self.scripts()
    let directory = try TemporaryDirectory()
    let environment = try Self.shellEnvironment(directory)
    for (typed, words) in Self.lines {
      let result = try Command.run(
        ["-c", "cd \(directory.path); source \(scripts.fish); complete -C '\(typed)'"], executable: URL(fileURLWithPath: "/usr/bin/fish"),
        environment: environment)
      let candidates = result.stdout.split(separator: "\n").map { $0.split(separator: "\t").first.map(String.init) ?? "" }
      let last = String(words.split(separator: "]").last?.dropFirst() ?? "")
      #expect(candidates.first == last, "\(typed): \(result.stdout) \(result.stderr)")
    }
  }
}
