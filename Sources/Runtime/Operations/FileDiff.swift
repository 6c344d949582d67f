// --diff of copy and sync: for each file rsync's itemized list says the push changes, the
// host's current file is fetched over the open connection (one command, each file at most
// 1 MiB, base64) and compared here with the store's (a `StoreRead` through the checked
// source) by `TextDiff`. What is not text says so: binary, large, a new directory, a link.
// Crypt hashes in the result are redacted after the comparison, so a changed hash still
// shows as a changed line.

import Foundation

enum FileDiff {
  /// A file larger than this (on either side) is only measured: "large file differs".
  static let limit = 1 << 20
  /// What one step fetches from a host at most (the transport keeps 16 MiB of output; base64
  /// makes 4 of 3 bytes): files beyond it are not shown.
  static let budget = 8 << 20

  /// An entry of rsync's itemized list (`>f.st...... etc/motd`).
  struct Change {
    /// rsync's `YXcstpoguax` (or `*deleting`).
    var flags: String
    /// Where it is on the host. A file sent to a destination that the runbook names is that
    /// path, or a file inside it when it is a directory: both are fetched.
    var hostPaths: [String]
    /// Its path below the push's source (`""`: the source is this file).
    var storePath: String
    /// The store's file as the operator knows it.
    var shownStore: String
    /// A symbolic link's target, as rsync shows it.
    var linkTarget: String?

    var isFile: Bool { flags.dropFirst().first == "f" }
    var isDeletion: Bool { flags.hasPrefix("*deleting") }
    var isNew: Bool { flags.dropFirst(2).hasPrefix("+++") }
    /// The flag at `index` of `YXcstpoguax` is set.
    func flag(_ index: Int, _ letter: Character) -> Bool {
      let letters = Array(flags)
      return letters.count > index && letters[index] == letter
    }
  }

  /// The host's side of a file, as the fetch command reports it.
  enum HostContent: Equatable {
    case missing
    case directory
    case other
    case unreadable
    case large(size: Int, mode: UInt16)
    case skipped(size: Int, mode: UInt16)
    case file([UInt8], mode: UInt16)
  }

  /// The changes of `itemized` (rsync's lines that change something) for a push of `source`
  /// to `target`.
  static func changes(_ itemized: [String], source: LocalSource, target: String, named: Bool) -> [Change] {
    itemized.compactMap { line in
      guard let space = line.firstIndex(of: " ") else { return nil }
      let flags = String(line[..<space])
      var name = unescaped(String(line[space...].drop { $0 == " " }))
      var linkTarget: String?
      if flags.dropFirst().first == "L", let arrow = name.range(of: " -> ") {
        linkTarget = String(name[arrow.upperBound...])
        name = String(name[..<arrow.lowerBound])
      }
      if source.isDirectory {
        return Change(
          flags: flags, hostPaths: [target + name], storePath: name, shownStore: source.shown(name), linkTarget: linkTarget)
      }
      return Change(
        flags: flags, hostPaths: CopyOperation.hostFiles(source, target: target, named: named, wholeTree: false),
        storePath: "", shownStore: source.source.shown, linkTarget: linkTarget)
    }
  }

  /// A name as rsync prints it, with each byte it escapes (`\#303`: control characters,
  /// anything not ASCII) back.
  static func unescaped(_ name: String) -> String {
    var bytes: [UInt8] = []
    var rest = Array(name.utf8)[...]
    while let byte = rest.first {
      let digits = rest.dropFirst(2).prefix(3)
      if byte == UInt8(ascii: "\\"), rest.dropFirst().first == UInt8(ascii: "#"), digits.count == 3,
        digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) })
      {
        bytes.append(digits.reduce(0) { $0 &* 8 &+ ($1 - UInt8(ascii: "0")) })
        rest = rest.dropFirst(5)
      } else {
        bytes.append(byte)
        rest = rest.dropFirst()
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Fetches the host's side of `changes`, reads the store's, and goes on with the diff text
  /// (nil when there is nothing to show).
  static func plan(_ changes: [Change], source: LocalSource, _ facts: HostFacts, then: @escaping @Sendable (String?) -> Plan) -> Plan {
    let files = changes.filter { $0.isFile && !$0.isDeletion }
    guard !files.isEmpty else { return then(text(changes, host: [], store: [])) }
    let paths = files.flatMap(\.hostPaths)
    guard !paths.contains(where: { $0.contains("\n") }) else { return then(text(changes, host: [], store: [])) }
    let fetch = facts.command(.script(fetchScript), input: .text(paths.joined(separator: "\n") + "\n"))
    return .command(fetch) { exited in
      guard exited.status == 0 else {
        return then("cannot fetch the host's files to compare: " + (exited.stderr.split(separator: "\n").last.map(String.init) ?? "exit \(exited.status)"))
      }
      var records = decode(exited.stdout)[...]
      var host: [HostContent] = []
      var resolved = changes
      for index in resolved.indices where resolved[index].isFile && !resolved[index].isDeletion {
        let paths = resolved[index].hostPaths
        let mine = Array(records.prefix(paths.count))
        records = records.dropFirst(paths.count)
        // A destination that is a directory receives the file inside it.
        let inside = mine.first == .directory && mine.count == 2
        resolved[index].hostPaths = [inside ? paths[1] : paths[0]]
        host.append((inside ? mine.last : mine.first) ?? .unreadable)
      }
      let read = StoreRead(source: source, paths: files.map(\.storePath), limit: limit)
      return .read(read) { [resolved, host] store in then(text(resolved, host: host, store: store)) }
    }
  }

  /// Reports each path read on stdin as one line: `missing`, `dir`, `other` (a link, a
  /// device…), `unreadable`, `large SIZE MODE`, `skipped SIZE MODE` (over the budget), or
  /// `file SIZE MODE BASE64` (the content, at most the limit).
  static let fetchScript = [
    "b=\(budget); while IFS= read -r p; do",
    #"if [ -h "$p" ]; then echo other; elif [ -d "$p" ]; then echo dir; elif [ ! -e "$p" ]; then echo missing;"#,
    #"elif [ ! -f "$p" ]; then echo other; elif [ ! -r "$p" ] || ! s=$(stat -c '%s %a' -- "$p"); then echo unreadable;"#,
    #"elif [ "${s% *}" -gt \#(limit) ]; then echo "large $s"; elif [ "${s% *}" -gt "$b" ]; then echo "skipped $s";"#,
    #"else b=$((b-${s% *})); printf 'file %s ' "$s"; head -c \#(limit) -- "$p" | base64 -w0; echo; fi; done"#,
  ].joined(separator: " ")

  /// The fetch command's report, one record per path.
  static func decode(_ stdout: String) -> [HostContent] {
    stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast(stdout.hasSuffix("\n") ? 1 : 0).map { line in
      let words = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
      let size = words.count > 1 ? Int(words[1]) : nil
      let mode = words.count > 2 ? UInt16(words[2], radix: 8) : nil
      switch words.first {
      case "missing": return .missing
      case "dir": return .directory
      case "other": return .other
      case "large": return size.flatMap { size in mode.map { .large(size: size, mode: $0) } } ?? .unreadable
      case "skipped": return size.flatMap { size in mode.map { .skipped(size: size, mode: $0) } } ?? .unreadable
      case "file":
        guard let mode, let data = Data(base64Encoded: words.count > 3 ? words[3] : "") else { return .unreadable }
        return .file(Array(data), mode: mode)
      default: return .unreadable
      }
    }
  }

  /// The diff text of `changes`: `host` and `store` hold the two sides of each file change
  /// (not a deletion), in order. Nil when there is nothing to say.
  static func text(_ changes: [Change], host: [HostContent], store: [StoreContent]) -> String? {
    var host = host[...]
    var store = store[...]
    var pieces: [String] = []
    for change in changes {
      let path = change.hostPaths.first ?? ""
      if change.isDeletion {
        pieces.append("\(path): deleted")
      } else if !change.isFile {
        if let target = change.linkTarget {
          pieces.append("\(path): \(change.isNew ? "new " : "")symbolic link → \(target)")
        } else if change.flags.dropFirst().first == "d" {
          if change.isNew { pieces.append("\(path): new directory") }
        } else {
          pieces.append("\(path): \(change.isNew ? "new " : "")special file")
        }
      } else if let old = host.popFirst(), let new = store.popFirst() {
        pieces += file(change, old: old, new: new)
      }
    }
    return pieces.isEmpty ? nil : Secret.redactingHashes(in: pieces.joined(separator: "\n") + "\n")
  }

  /// What changes in one file: its mode (when rsync says so), then its content.
  static func file(_ change: Change, old: HostContent, new: StoreContent) -> [String] {
    let path = change.hostPaths.first ?? ""
    var pieces: [String] = []
    let oldMode: UInt16? =
      switch old {
      case .large(_, let mode), .skipped(_, let mode), .file(_, let mode): mode
      default: nil
      }
    let newMode: UInt16? =
      switch new {
      case .file(_, let mode), .large(_, let mode): mode
      case .unreadable: nil
      }
    if change.flag(5, "p"), let oldMode, let newMode, oldMode != newMode {
      pieces.append("\(path): mode changed \(octal(oldMode)) → \(octal(newMode))")
    }
    switch (old, new) {
    case (_, .unreadable(let reason)):
      pieces.append("\(path): cannot read the store's file (\(reason))")
    case (.directory, _), (.other, _):
      pieces.append("\(path): replaces what is not a regular file on the host")
    case (.unreadable, _):
      pieces.append("\(path): cannot read the host's file")
    case (.skipped, _):
      pieces.append("\(path): not shown (over \(budget >> 20) MiB of files to compare)")
    case (.missing, .large(let size, _)):
      pieces.append("\(path): new large file (\(size) bytes)")
    case (.large(let size, _), _), (_, .large(let size, _)):
      pieces.append("\(path): large file differs (\(size) bytes)")
    case (.missing, .file(let bytes, _)):
      pieces.append(content(path, old: nil, new: bytes, newLabel: change.shownStore))
    case (.file(let was, _), .file(let bytes, _)):
      if was != bytes { pieces.append(content(path, old: was, new: bytes, newLabel: change.shownStore)) }
      if was == bytes && pieces.isEmpty { pieces.append("\(path): same content, new modification time") }
    }
    return pieces
  }

  /// A unified diff, or one line when either side is not text (a NUL byte, invalid UTF-8).
  static func content(_ path: String, old: [UInt8]?, new: [UInt8], newLabel: String) -> String {
    guard isText(old ?? []), isText(new) else {
      return old == nil ? "\(path): new binary file (\(new.count) bytes)" : "\(path): binary file differs"
    }
    let diff = TextDiff.unified(old: old ?? [], new: new, from: old == nil ? "/dev/null" : path, to: newLabel)
    return String(diff.dropLast())
  }

  static func isText(_ bytes: [UInt8]) -> Bool {
    !bytes.contains(0) && String(validating: bytes, as: UTF8.self) != nil
  }

  /// `0644`.
  static func octal(_ mode: UInt16) -> String {
    let digits = String(mode, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
  }
}

/// Unified diffs of two texts, line by line (bytes compared, never Unicode-equivalent
/// strings), with three lines of context, as `diff -u` writes them.
///
/// Why in Swift and not `diff -u`: no temporary file on this server holds a host's file
/// (it may hold secrets), no process per file and host, the same text wherever cfi-sh runs,
/// and a pure function the tests call. The comparison is Myers' (the standard library's
/// `difference(from:)`) over what lies between the common head and tail; past
/// `maxCompared` lines there it shows the whole middle as replaced, which is still a correct
/// diff, so the time and memory of a step stay bounded.
enum TextDiff {
  static let context = 3
  static let maxCompared = 4000

  static func unified(old: [UInt8], new: [UInt8], from: String, to: String) -> String {
    let a = lines(old)
    let b = lines(new)
    var start = 0
    while start < a.count, start < b.count, a[start] == b[start] { start += 1 }
    var endA = a.count
    var endB = b.count
    while endA > start, endB > start, a[endA - 1] == b[endB - 1] {
      endA -= 1
      endB -= 1
    }
    var removed = Set<Int>()
    var inserted = Set<Int>()
    if (endA - start) + (endB - start) <= maxCompared {
      for change in Array(b[start..<endB]).difference(from: Array(a[start..<endA])) {
        switch change {
        case .remove(let offset, _, _): removed.insert(start + offset)
        case .insert(let offset, _, _): inserted.insert(start + offset)
        }
      }
    } else {
      removed = Set(start..<endA)
      inserted = Set(start..<endB)
    }
    // The edit script: "-" old line, "+" new line, " " both.
    var ops: [(kind: Character, line: [UInt8])] = []
    var i = 0
    var j = 0
    while i < a.count || j < b.count {
      if i < a.count, removed.contains(i) {
        ops.append(("-", a[i]))
        i += 1
      } else if j < b.count, inserted.contains(j) {
        ops.append(("+", b[j]))
        j += 1
      } else {
        ops.append((" ", a[i]))
        i += 1
        j += 1
      }
    }
    let changed = ops.indices.filter { ops[$0].kind != " " }
    guard let first = changed.first else { return "" }
    // Hunks: changes less than 2 × context unchanged lines apart share one.
    var hunks: [Range<Int>] = []
    var low = max(0, first - context)
    var high = min(ops.count, first + context + 1)
    for index in changed.dropFirst() {
      if index - context <= high {
        high = min(ops.count, index + context + 1)
      } else {
        hunks.append(low..<high)
        low = index - context
        high = min(ops.count, index + context + 1)
      }
    }
    hunks.append(low..<high)
    // Lines of each side before each op.
    var before: [(old: Int, new: Int)] = [(0, 0)]
    for op in ops {
      let last = before[before.count - 1]
      before.append((last.old + (op.kind == "+" ? 0 : 1), last.new + (op.kind == "-" ? 0 : 1)))
    }
    func range(_ start: Int, _ count: Int) -> String {
      count == 0 ? "\(start),0" : count == 1 ? "\(start + 1)" : "\(start + 1),\(count)"
    }
    var out = "--- \(from)\n+++ \(to)\n"
    for hunk in hunks {
      let oldRange = range(before[hunk.lowerBound].old, before[hunk.upperBound].old - before[hunk.lowerBound].old)
      let newRange = range(before[hunk.lowerBound].new, before[hunk.upperBound].new - before[hunk.lowerBound].new)
      out += "@@ -\(oldRange) +\(newRange) @@\n"
      for op in ops[hunk] {
        out += String(op.kind) + String(decoding: op.line, as: UTF8.self)
        if op.line.last != UInt8(ascii: "\n") { out += "\n\\ No newline at end of file\n" }
      }
    }
    return out
  }

  /// The lines of `text`, each with its `\n` (the last one may lack it).
  static func lines(_ text: [UInt8]) -> [[UInt8]] {
    var lines: [[UInt8]] = []
    var start = 0
    for (index, byte) in text.enumerated() where byte == UInt8(ascii: "\n") {
      lines.append(Array(text[start...index]))
      start = index + 1
    }
    if start < text.count { lines.append(Array(text[start...])) }
    return lines
  }
}
