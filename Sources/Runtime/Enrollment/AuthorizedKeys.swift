// Enrollment, root's authorized_keys: one marked line holds the server's key.
//
// The marker: the cfi line is `[options ]ssh-ed25519 BASE64 cfi-sh-server:SHA256:…`, i.e. the
// key's comment field, a single word, names it. A line is cfi's when it is not a `#` comment
// and its last whitespace-separated field starts with `cfi-sh-server:`. Being one line, the
// marker cannot get separated from the key it marks (a `# marker` line above the key could).
// Options an administrator puts in front of that line (`from="…"`) are kept when it is
// rewritten; every other line is kept byte for byte.

import Foundation

/// The one cfi line in root's authorized_keys.
public enum AuthorizedKeys {
  public static let defaultPath = "/root/.ssh/authorized_keys"
  /// The comment field of the cfi line starts with this; the fingerprint follows.
  public static let marker = "cfi-sh-server:"

  /// The line installed for `key`: `ssh-ed25519 BASE64 cfi-sh-server:SHA256:…`.
  public static func line(for key: ServerKey, fingerprint: KeyFingerprint) -> String {
    "\(key.line) \(marker)\(fingerprint)"
  }

  /// What a change did.
  public enum Change: Hashable, Sendable {
    case unchanged, added, replaced, removed
  }

  /// The fields of a line split on blanks (a trailing CR counts as a blank).
  private static func fields(_ line: Substring) -> [Substring] {
    line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
  }

  /// Whether a line is the cfi line: not a comment, and its last field starts with the marker.
  public static func isMarked(_ line: Substring) -> Bool {
    let fields = fields(line)
    guard let first = fields.first, !first.hasPrefix("#"), let last = fields.last else { return false }
    return fields.count >= 3 && last.hasPrefix(marker)
  }

  /// The cfi lines of a file's text.
  public static func markedLines(in text: String) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: false).filter(isMarked).map(String.init)
  }

  /// The key of a cfi line, if it is a valid one.
  public static func key(ofMarked line: String) -> ServerKey? {
    let fields = fields(line[...])
    guard fields.count >= 3, isMarked(line[...]) else { return nil }
    return try? ServerKey.parse(fields[(fields.count - 3)...].prefix(2).joined(separator: " "))
  }

  /// `text` with `line` as its one cfi line (nil: with none), and what changed. Other lines
  /// are kept byte for byte; a cfi line that already is `line` (after any options) is kept as
  /// it is; the first cfi line is replaced in place, keeping its options, and further cfi lines
  /// are dropped; without one, `line` is appended.
  public static func edit(_ text: [UInt8], installing line: String?) -> (text: [UInt8], change: Change) {
    // Each line with whether a "\n" ended it (only the last one of a file may lack it).
    var pieces = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
    let lastTerminated = text.isEmpty || text.last == UInt8(ascii: "\n")
    if lastTerminated { pieces.removeLast() }  // the empty piece after the last "\n"
    var lines = pieces.enumerated().map { ($1, $0 < pieces.count - 1 || lastTerminated) }
    func decoded(_ bytes: [UInt8]) -> Substring { String(decoding: bytes, as: UTF8.self)[...] }
    let marked = lines.indices.filter { isMarked(decoded(lines[$0].0)) }
    var change = Change.unchanged
    if let line {
      if let first = marked.first {
        // Options in front of the key (the fields before the last three) are kept.
        let existing = decoded(lines[first].0)
        let keyStart = fields(existing).suffix(3).first!.startIndex
        let wanted = Array((String(existing[..<keyStart]) + line).utf8)
        if lines[first].0 != wanted {
          lines[first] = (wanted, true)
          change = .replaced
        }
        for index in marked.dropFirst().reversed() {
          lines.remove(at: index)
          change = .replaced
        }
      } else {
        lines.append((Array(line.utf8), true))
        change = .added
      }
    } else {
      for index in marked.reversed() { lines.remove(at: index) }
      if !marked.isEmpty { change = .removed }
    }
    guard change != .unchanged else { return (text, .unchanged) }
    var out: [UInt8] = []
    for (index, (bytes, terminated)) in lines.enumerated() {
      out += bytes
      if terminated || index < lines.count - 1 { out.append(UInt8(ascii: "\n")) }
    }
    return (out, change)
  }

  /// Installs `key` as the cfi line of the file at `path` (creating its directory with mode
  /// 0700 and the file with 0600 when missing; an existing file keeps its mode and owner).
  public static func install(_ key: ServerKey, fingerprint: KeyFingerprint, at path: String) throws(EnrollmentError) -> Change {
    try AtomicFile.createDirectory((path as NSString).deletingLastPathComponent, mode: 0o700)
    let current = try AtomicFile.read(path) ?? []
    let (text, change) = edit(current, installing: line(for: key, fingerprint: fingerprint))
    if change != .unchanged { try AtomicFile.write(text, to: path, newFileMode: 0o600) }
    return change
  }

  /// Removes the cfi line from the file at `path`, if any.
  public static func remove(at path: String) throws(EnrollmentError) -> Change {
    guard let current = try AtomicFile.read(path) else { return .unchanged }
    let (text, change) = edit(current, installing: nil)
    if change != .unchanged { try AtomicFile.write(text, to: path, newFileMode: 0o600) }
    return change
  }
}
