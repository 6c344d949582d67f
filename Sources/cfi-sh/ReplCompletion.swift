// Tab completion for the REPL: what may come at the cursor, from the words before it. It
// works on a snapshot of the session's vocabulary (groups, hosts, variables, defs, the store),
// refreshed after each entry, because readline asks from its own thread.

import CFIScript
import CFISyntax
import Foundation
import Runtime
import Synchronization

/// The names the REPL can complete.
struct Vocabulary: Sendable {
  var groups: [String] = []
  /// Host names, and each group's hosts folded into a pattern (`pc[01-12]`).
  var hosts: [String] = []
  var variables: [String] = []
  var functions: [String] = []
  /// The store's root, for paths after `copy`, `sync` and `script`.
  var storeRoot = Store.defaultRoot
  /// The groups of the default target, when it names groups (their store directories are
  /// searched first).
  var targetGroups: [String] = []
}

/// The vocabulary, shared between the REPL (which refreshes it) and readline's thread.
final class SharedVocabulary: Sendable {
  let value: Mutex<Vocabulary>
  init(_ vocabulary: Vocabulary) { value = Mutex(vocabulary) }
}

/// Completion candidates for a word of a REPL line.
enum ReplCompletion {
  /// The meta-commands, as `:help` lists them.
  static let metaCommands = [
    ":help", ":hosts", ":groups", ":discover", ":target", ":check", ":diff", ":set", ":last", ":failed", ":unreachable",
    ":rerun", ":log", ":save", ":load", ":quit",
  ]
  static let settings = ["parallel", "timeout", "connect_timeout", "max_fail", "serial", "discovery", "reboot_timeout"]
  static let builtins = ["lines(", "env(", "len("]
  /// Words that may start a statement or follow one (`on group`, `on host`, `on all`).
  static let words: [String] =
    Keyword.allCases.map(\.rawValue) + ["all", "host", "hosts", "except", "to"]

  /// Candidates for `word`, which starts at UTF-8 offset `start` of `line`.
  static func candidates(line: String, start: Int, word: String, vocabulary: Vocabulary) -> [String] {
    let before = String(decoding: Array(line.utf8).prefix(start), as: UTF8.self)
    let previous = before.split(whereSeparator: { " \t\n<>;=(),\"'".contains($0) }).map(String.init)
    var lastWord = previous.last
    // In a list (`on group lab, off`), the word that started it.
    if before.trimmingCharacters(in: .whitespaces).hasSuffix(",") {
      lastWord = previous.last { ["group", "host", "hosts", "except"].contains($0) }
    }
    let groupReferences = vocabulary.groups.map { "@" + $0 }
    let state = LineState(atEndOf: before)
    if state.inComment { return [] }
    if let quote = state.openQuote {
      // Readline's word inside a string starts at the quote: `echo $gr` → `echo $greeting`.
      if quote == "\"", let dollar = word.lastIndex(of: "$") {
        let head = word[..<dollar]
        let brace = word[dollar...].hasPrefix("${")
        return matches(word, vocabulary.variables.map { head + (brace ? "${" + $0 + "}" : "$" + $0) })
      }
      // The word is a string's first: `copy "etc/…`.
      if before.last == quote, ["copy", "sync", "script"].contains(lastWord ?? "") {
        return storePaths(word, groups: groupsNamed(in: before, vocabulary), vocabulary: vocabulary)
      }
      return []
    }
    if previous.isEmpty, word.hasPrefix(":") { return matches(word, metaCommands) }
    switch (previous.first, lastWord) {
    case (":target", "group"): return matches(word, vocabulary.groups)
    case (":target", _): return matches(word, ["all", "group"] + groupReferences + vocabulary.hosts)
    case (":hosts", _): return matches(word, groupReferences + vocabulary.hosts)
    case (":log", _): return previous.count == 1 ? matches(word, ["last"] + vocabulary.hosts.filter { !$0.contains("[") }) : []
    case (":check", _), (":diff", _): return matches(word, ["on", "off"])
    case (":set", _): return previous.count == 1 ? matches(word, settings) : []
    case (":save", _), (":load", _): return localPaths(word)
    default: break
    }
    if word.hasPrefix("@") { return matches(word, groupReferences) }
    switch lastWord {
    case "group": return matches(word, vocabulary.groups)
    case "host", "hosts", "except": return matches(word, vocabulary.hosts + groupReferences)
    case "set": return matches(word, settings)
    default: return matches(word, words + vocabulary.variables + vocabulary.functions.map { $0 + "(" } + builtins)
    }
  }

  private static func matches(_ word: String, _ pool: [String]) -> [String] {
    var seen: Set<String> = []
    return pool.filter { $0.hasPrefix(word) && seen.insert($0).inserted }.sorted()
  }

  /// The groups an `on group …` earlier in the line names, else the default target's.
  private static func groupsNamed(in text: String, _ vocabulary: Vocabulary) -> [String] {
    let words = text.split(whereSeparator: { " \t\n<>;,".contains($0) }).map(String.init)
    var groups: [String] = []
    if let index = words.lastIndex(of: "group") {
      groups = words[(index + 1)...].prefix { vocabulary.groups.contains($0) }.map { $0 }
    }
    if groups.isEmpty, let at = words.last(where: { $0.hasPrefix("@") }) { groups = [String(at.dropFirst())] }
    return groups.isEmpty ? vocabulary.targetGroups : groups
  }

  /// Paths inside the store directories of `groups` (of every group when none is known):
  /// directories end in `/` so that completion can go on inside them.
  static func storePaths(_ word: String, groups: [String], vocabulary: Vocabulary) -> [String] {
    let roots = (groups.isEmpty ? vocabulary.groups : groups).map { vocabulary.storeRoot + "/" + $0 }
    return matches(word, roots.flatMap { directoryEntries(root: $0, word: word) })
  }

  /// Paths on the server, relative to the current directory (for `:save` and `:load`).
  static func localPaths(_ word: String) -> [String] {
    matches(word, directoryEntries(root: nil, word: word))
  }

  /// Entries of the directory part of `word` under `root`, as `word`'s directory + name.
  private static func directoryEntries(root: String?, word: String) -> [String] {
    let slash = word.lastIndex(of: "/")
    let directoryPart = slash.map { String(word[...$0]) } ?? ""
    let directory: String
    if let root { directory = root + "/" + directoryPart } else { directory = directoryPart.isEmpty ? "." : directoryPart }
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
    return names.filter { !$0.hasPrefix(".") || word.hasSuffix("/.") || word.hasPrefix(".") }.map { name in
      var isDirectory: ObjCBool = false
      let exists = FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory)
      return directoryPart + name + (exists && isDirectory.boolValue ? "/" : "")
    }
  }
}
