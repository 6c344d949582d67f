// What Tab offers in the REPL, by where the cursor is.

import Foundation
import Testing

@testable import cfi_sh

@Suite struct ReplCompletionTests {
  let store: String
  let vocabulary: Vocabulary

  init() throws {
    store = NSTemporaryDirectory() + "cfi-completion-" + UUID().uuidString
    for path in ["lab/etc/apt/sources.list.d", "lab/etc/dpkg", "office/etc/skel"] {
      try FileManager.default.createDirectory(atPath: store + "/" + path, withIntermediateDirectories: true)
    }
    _ = FileManager.default.createFile(atPath: store + "/lab/etc/dpkg/dpkg.cfg", contents: Data())
    vocabulary = Vocabulary(
      groups: ["lab", "office", "unknown"], hosts: ["pc01", "pc02", "desk1", "pc[01-02]"],
      variables: ["greeting", "hash"], functions: ["deploy"], storeRoot: store, targetGroups: [])
  }

  func complete(_ line: String) -> [String] {
    // The word as readline finds it: after an open quote, else after the last break character.
    var quote: Character?
    var quoteEnd = line.startIndex
    for index in line.indices {
      if let open = quote {
        if line[index] == open { quote = nil }
      } else if line[index] == "\"" || line[index] == "'" {
        quote = line[index]
        quoteEnd = line.index(after: index)
      }
    }
    let breaks = Set(" \t\n\"'<>;=(),")
    let word = quote != nil ? String(line[quoteEnd...]) : String(line.reversed().prefix { !breaks.contains($0) }.reversed())
    return ReplCompletion.candidates(
      line: line, start: line.utf8.count - word.utf8.count, word: word, vocabulary: vocabulary)
  }

  @Test func statementsMetaCommandsAndNames() {
    #expect(complete("ins") == ["install"])
    #expect(complete("gr") == ["greeting", "group"])
    #expect(complete("dep") == ["deploy("])
    #expect(complete(":ta") == [":target"])
    #expect(complete(":check o") == ["off", "on"])
    #expect(complete(":diff o") == ["off", "on"])
    #expect(complete("set max") == ["max_fail"])
    #expect(complete(":set con") == ["connect_timeout"])
  }

  @Test func groupsAndHosts() {
    #expect(complete("on group o") == ["office"])
    #expect(complete("on host p") == ["pc01", "pc02", "pc[01-02]"])
    #expect(complete("on host @l") == ["@lab"])
    #expect(complete("on all except de") == ["desk1"])
    #expect(complete(":target @") == ["@lab", "@office", "@unknown"])
    #expect(complete(":target group l") == ["lab"])
    #expect(complete("on group lab, off") == ["office"])
    #expect(complete("on all except pc01, de") == ["desk1"])
  }

  /// `:log` takes `last` or one host (not a pattern); one word only.
  @Test func logTakesLastOrAHost() {
    #expect(complete(":lo") == [":load", ":log"])
    #expect(complete(":log ") == ["desk1", "last", "pc01", "pc02"])
    #expect(complete(":log p") == ["pc01", "pc02"])
    #expect(complete(":log pc01 ").isEmpty)
  }

  @Test func storePathsAfterCopyFollowTheBlocksGroup() {
    #expect(complete(#"on group lab < copy "etc/"#) == ["etc/apt/", "etc/dpkg/"])
    #expect(complete(#"on group lab < copy "etc/dpkg/"#) == ["etc/dpkg/dpkg.cfg"])
    #expect(complete(#"on group office < copy "etc/"#) == ["etc/skel/"])
    // No group known: every group's store.
    #expect(complete(#"copy "etc/s"#) == ["etc/skel/"])
  }

  @Test func variablesInsideStrings() {
    #expect(complete(#"run "echo $gr"#) == ["echo $greeting"])
    #expect(complete(#"print "${ha"#) == ["${hash}"])
    #expect(complete(#"run "echo x"#) == [])
  }
}
