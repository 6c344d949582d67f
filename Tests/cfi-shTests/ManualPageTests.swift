// Man pages: the pages `make man` writes (scripts/generate/man-pages: argument-parser's
// generate-manual over `--experimental-dump-help`, and pandoc over docs/language.md) exist
// for every command and render with `man` without a single groff warning.

import ArgumentParser
import Foundation
import TestSupport
import Testing

@testable import cfi_sh

@Suite(.serialized) struct ManualPageTests {
  /// The pages, generated once for the suite into a directory of its own.
  static let pages: Result<TemporaryDirectory, any Error> = Result {
    let directory = try TemporaryDirectory()
    let result = try Command.run(
      [Command.binary.path, directory.path], executable: Command.packageRoot.appendingPathComponent("scripts/generate/man-pages"))
    guard result.status == 0 else { throw Failure(message: "man-pages failed (\(result.status)): \(result.stderr)") }
    return directory
  }

  struct Failure: Error, CustomStringConvertible { var message: String; var description: String { message } }

  /// Every command of the tree, as a page name: cfi-sh, cfi-sh-hosts, cfi-sh-hosts-accept, ...
  static func expectedPages() -> [String] {
    var names: [String] = []
    func walk(_ command: any ParsableCommand.Type, _ name: String) {
      names.append(name + ".1")
      for sub in command.configuration.subcommands { walk(sub, name + "-" + (sub.configuration.commandName ?? "?")) }
    }
    walk(CommandTree.self, "cfi-sh")
    return names.sorted()
  }

  static func files(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
  }

  @Test func thereIsAPageForEveryCommandAndTheLanguage() throws {
    let directory = try Self.pages.get().path
    #expect(Self.files(directory + "/man1") == Self.expectedPages())
    #expect(Self.files(directory + "/man5") == ["cfi-sh-language.5"])
    #expect(Self.expectedPages().contains("cfi-sh-hosts-accept.1"))
    #expect(Self.expectedPages().contains("cfi-sh-run.1"))
  }

  /// `man --warnings -l PAGE` at 80 columns: its text, and what groff said on stderr.
  static func render(_ page: String, width: Int = 80, lintian: Bool = false) throws -> Command {
    try Command.run(
      ["--warnings", "-l"] + (lintian ? ["-E", "UTF-8", "-Tutf8", "-Z"] : []) + [page],
      executable: URL(fileURLWithPath: "/usr/bin/man"),
      environment: [
        "MANWIDTH": "\(width)", "MANROFFSEQ": "", "MAN_KEEP_FORMATTING": "", "MANPAGER": "cat", "PAGER": "cat",
        "LC_ALL": "C.UTF-8",
      ])
  }

  /// At 80 columns, and as lintian renders a page (its command, at 120 columns) and at other
  /// widths: where a page end falls depends on the width, and groff 1.22's tbl warns for a
  /// table cell that one splits.
  @Test(arguments: [80, 95, 120, 137])
  func everyPageRendersWithoutWarnings(width: Int) throws {
    let directory = try Self.pages.get().path
    let pages = Self.files(directory + "/man1").map { directory + "/man1/" + $0 } + [directory + "/man5/cfi-sh-language.5"]
    for page in pages {
      for lintian in [false, true] {
        let rendered = try Self.render(page, width: width, lintian: lintian)
        #expect(rendered.status == 0, "\(page): \(rendered.stderr)")
        #expect(rendered.stderr == "", "\(page) at \(width) columns\(lintian ? ", as lintian renders it" : "")")
      }
      #expect(try Self.render(page, width: width).stdout.contains("NAME"), "\(page)")
    }
  }

  /// whatis and apropos (and lintian) read each page's NAME with lexgrog: one name, a dash, what it is.
  @Test func everyPageHasANameWhatisCanRead() throws {
    let directory = try Self.pages.get().path
    for page in Self.files(directory + "/man1") {
      let name = String(page.dropLast(2))
      let read = try Command.run([directory + "/man1/" + page], executable: URL(fileURLWithPath: "/usr/bin/lexgrog"))
      #expect(read.status == 0, "\(page): \(read.stdout)\(read.stderr)")
      #expect(read.stdout.hasPrefix(directory + "/man1/" + page + ": \"" + name + " - "), "\(read.stdout)")
    }
  }

  @Test func pagesCarryTheCommandsTextsAndNameEachOther() throws {
    let directory = try Self.pages.get().path
    let main = try Self.render(directory + "/man1/cfi-sh.1").stdout
    #expect(main.contains("EXIT STATUS"))
    #expect(main.contains("--limit"))
    #expect(main.contains("cfi-sh-hosts(1)"))
    let accept = try Self.render(directory + "/man1/cfi-sh-hosts-accept.1").stdout
    #expect(accept.contains("cfi-sh hosts accept"))
    #expect(accept.contains("--all"))
    let run = try Self.render(directory + "/man1/cfi-sh-run.1").stdout
    #expect(run.contains("TARGET"))
  }

  @Test func theLanguagePageHasTheReferencesSections() throws {
    let directory = try Self.pages.get().path
    let page = try Self.render(directory + "/man5/cfi-sh-language.5").stdout
    #expect(page.contains("cfi-sh-language - CFIScript, the runbook language of cfi-sh(1)"))
    for heading in ["1. Running a runbook", "7. Actions", "16. Grammar summary (EBNF)", "7.10 reboot"] {
      #expect(page.contains("\n" + heading) || page.contains("   " + heading), "\(heading)")
    }
  }
}
