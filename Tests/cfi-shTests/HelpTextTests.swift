// Help texts: every command's `--help` reads well on an 80-column terminal. ArgumentParser
// re-wraps a discussion line longer than the screen on its own, which leaves a ragged short
// line in the middle of each hard-wrapped paragraph; so no line may be longer.

import ArgumentParser
import TestSupport
import Testing

@testable import cfi_sh

@Suite struct HelpTextTests {
  /// Every command reachable from the entry point, with its name.
  private static func commands() -> [(String, any ParsableCommand.Type)] {
    var found: [(String, any ParsableCommand.Type)] = []
    func walk(_ command: any ParsableCommand.Type, _ path: String) {
      found.append((path, command))
      for sub in command.configuration.subcommands {
        walk(sub, path + " " + (sub.configuration.commandName ?? "?"))
      }
    }
    // The tree the man pages are made from: cfi-sh's texts, the tools, run and deliver.
    walk(CommandTree.self, "cfi-sh")
    return found
  }

  /// A hard-wrapped paragraph's line wider than 80 columns; a paragraph written as one long
  /// line (the next line blank, indented, or a new list item) is wrapped evenly and fine.
  @Test func noHardWrappedLineIsWiderThanATerminal() {
    for (name, command) in Self.commands() {
      let lines = command.configuration.discussion.split(separator: "\n", omittingEmptySubsequences: false)
      for (line, next) in zip(lines, lines.dropFirst() + [""]) where line.count > 80 {
        let continues = !next.isEmpty && !next.hasPrefix(" ") && next.firstMatch(of: #/^(\d+\.|-) /#) == nil
        if continues { Issue.record("\(name): \(line.count) columns: \(line)") }
      }
    }
  }

  /// `cfi-sh help TOOL …`, as the tools' own usage lines tell users to type.
  @Test func helpNamesATool() throws {
    let hosts = try Command.run(["help", "hosts", "accept"])
    #expect(hosts.status == 0, "\(hosts.stderr)")
    #expect(hosts.stdout.hasPrefix("OVERVIEW: Accept pending hosts"))
    #expect(try Command.run(["help"]).stdout.hasPrefix("OVERVIEW: Configure a pool"))
    #expect(try Command.run(["help", "run"]).stdout.hasPrefix("usage: cfi-sh run"))
  }

  @Test func everyToolIsInTheMainHelp() {
    let help = CFISh.helpMessage(columns: 80)
    for tool in Tools.configuration.subcommands {
      #expect(help.contains("cfi-sh " + (tool.configuration.commandName ?? "?")), "\(tool)")
    }
    #expect(help.contains("cfi-sh run TARGET COMMAND"))
  }
}

@Suite struct HistoryFileTests {
  @Test func theHistoryFollowsHomeAsBashAndReadlineDo() {
    #expect(Repl.historyFile(environment: ["HOME": "/x"]) == "/x/.cfi_history")
    #expect(Repl.historyFile(environment: ["HOME": "/x", "CFI_HISTORY": "/h"]) == "/h")
    #expect(Repl.historyFile(environment: ["HOME": "/x", "CFI_HISTORY": ""]) == nil)
    #expect(Repl.historyFile(environment: [:])?.hasSuffix("/.cfi_history") == true)
  }
}
