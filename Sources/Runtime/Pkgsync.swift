// pkgsync's three lists in a group's store, and the check that they keep a host manageable.

import Foundation

/// The pkgsync lists of a group (`STORE/<group>/etc/pkgsync/{musthave,mayhave,maynothave}`).
public enum Pkgsync {
  /// The three files pkgsync requires (it aborts if one is missing).
  public static let lists = ["musthave", "mayhave", "maynothave"]
  /// Packages a client needs to stay reachable and manageable; pkgsync removes every
  /// installed package that is not listed, so these must be in musthave (or mayhave).
  public static let essential = ["openssh-server", "rsync", "avahi-daemon", "pkgsync"]

  /// The entries of a list as pkgsync reads them: lines starting with `#` and blank lines are
  /// dropped, and every space and tab is deleted — so `vim # editor` means `vim#editor`.
  public static func entries(_ text: String) -> [String] {
    text.split(whereSeparator: \.isNewline).compactMap { line in
      guard !line.hasPrefix("#") else { return nil }
      let entry = line.filter { $0 != " " && $0 != "\t" && $0 != "\r" }
      return entry.isEmpty ? nil : entry
    }
  }

  /// One list as it was read (once, from the checked file) and checked.
  public struct List: Sendable {
    public let name: String
    public let text: String
    public let entries: [String]
    /// The file it was read from (its mode and time go with the text to the host).
    public let file: StoreFile
  }

  /// Reads the lists of `group` and refuses a set that would remove an essential package.
  public static func checkedLists(in store: Store, group: String) throws(StoreError) -> [String: [String]] {
    Dictionary(uniqueKeysWithValues: try checked(in: store, group: group).map { ($0.name, $0.entries) })
  }

  /// The lists of `group` as read and checked (`checkedLists`), in the order of `lists`:
  /// what pkgsync pushes is these texts, never the files read again.
  public static func checked(in store: Store, group: String) throws(StoreError) -> [List] {
    var read: [List] = []
    for list in Pkgsync.lists {
      let file = try store.open("etc/pkgsync/\(list)", group: group)
      let text = try file.text()
      read.append(List(name: list, text: text, entries: entries(text), file: file))
    }
    let lists = Dictionary(uniqueKeysWithValues: read.map { ($0.name, $0.entries) })
    let kept = Set(lists["musthave", default: []] + lists["mayhave", default: []])
    let removed = Set(lists["maynothave", default: []])
    if let package = essential.first(where: { removed.contains($0) || !kept.contains($0) }) {
      throw StoreError(
        "refusing pkgsync for group '\(group)': its lists would remove '\(package)', which a client needs to stay manageable (list it in etc/pkgsync/musthave)")
    }
    for pattern in lists["maynothave", default: []] where isPattern(pattern) {
      if let package = essential.first(where: { nameRegexMatches(pattern, $0) == true }) {
        throw StoreError(
          "refusing pkgsync for group '\(group)': its maynothave pattern '\(pattern)' matches '\(package)', which a client needs to stay manageable")
      }
    }
    return read
  }

  /// Whether pkgsync hands `entry` to `aptitude search` instead of taking it as a name: it
  /// contains one of `[ ] * ? ( ) | ~`.
  public static func isPattern(_ entry: String) -> Bool {
    entry.contains { "[]*?()|~".contains($0) }
  }

  /// Whether the aptitude pattern `pattern` matches the package name `name`, when it is a name
  /// pattern (`regex`, `~nregex`, `?name(regex)`: an unanchored, case-insensitive regular
  /// expression); nil for other search terms (`~i`, `?section(…)`…), which only aptitude on the
  /// host can expand.
  static func nameRegexMatches(_ pattern: String, _ name: String) -> Bool? {
    var regex = pattern
    if regex.hasPrefix("~n") {
      regex.removeFirst(2)
    } else if regex.hasPrefix("?name("), regex.hasSuffix(")") {
      regex = String(regex.dropFirst(6).dropLast())
    } else if regex.hasPrefix("~") || regex.hasPrefix("?") {
      return nil
    }
    guard let expression = try? NSRegularExpression(pattern: regex, options: [.caseInsensitive]) else { return nil }
    return expression.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
  }
}
