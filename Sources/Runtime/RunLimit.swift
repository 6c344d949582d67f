// `--limit`: narrows every block of a run to some hosts without editing the runbook, as
// `ansible-playbook --limit` does. A block the limit leaves empty is a block that matched no
// host (exit status bit 8), never a silent success.

import Foundation

/// The hosts a run may reach, whatever its blocks target.
public struct RunLimit: Hashable, Sendable {
  /// Hosts it allows; nil: every host it does not exclude (only `!` items were given).
  public var included: Set<HostName>?
  public var excluded: Set<HostName>
  /// As the command line gave it, for messages: `pc[01-04],!pc03`.
  public var text: String

  public init(included: Set<HostName>?, excluded: Set<HostName> = [], text: String) {
    self.included = included
    self.excluded = excluded
    self.text = text
  }

  public func allows(_ name: HostName) -> Bool {
    !excluded.contains(name) && (included?.contains(name) ?? true)
  }

  /// The results `@failed`, `@unreachable` and `@changed` stand for: the hosts with that
  /// status in the last run of the same runbook.
  public static let resultReferences = ["failed", "unreachable", "changed"]

  /// Parses `--limit` words: each a comma list of host patterns (`pc[01-10]`, `web1`, `@lab`
  /// for a group's hosts from `members`), `@failed`/`@unreachable`/`@changed` (the hosts
  /// `results` gives for that status), any of them after `!` to leave hosts out. Several
  /// words add up.
  public static func parse(
    _ words: [String], members: (GroupName) -> [HostName], results: (String) throws(HostPatternError) -> [HostName]
  ) throws(HostPatternError) -> RunLimit {
    var included: Set<HostName>?
    var excluded: Set<HostName> = []
    for word in words {
      for item in items(word) {
        let negated = item.hasPrefix("!")
        let text = negated ? String(item.dropFirst()) : item
        var names: Set<HostName>
        if text.hasPrefix("@"), resultReferences.contains(String(text.dropFirst())) {
          names = Set(try results(String(text.dropFirst())))
        } else {
          do { names = try HostPattern.names([text], members: members) } catch {
            throw HostPatternError(message: "--limit: \(error.message)", offset: error.offset, length: error.length)
          }
        }
        if negated {
          excluded.formUnion(names)
        } else {
          included = (included ?? []).union(names)
        }
      }
    }
    return RunLimit(included: included, excluded: excluded, text: words.joined(separator: ","))
  }

  /// Whether `--limit` words name a group's hosts (`@lab`, `!@lab`; not `@failed` and the
  /// other results): its members are known only once the whole inventory is.
  public static func namesAGroup(_ words: [String]) -> Bool {
    words.flatMap(items).contains { item in
      let text = item.hasPrefix("!") ? item.dropFirst() : Substring(item)
      guard text.hasPrefix("@") else { return false }
      return !resultReferences.contains(String(text.dropFirst()))
    }
  }

  /// The items of a comma list, split at the commas outside brackets (`pc[01,03],!web1`).
  static func items(_ word: String) -> [String] {
    var items: [String] = []
    var current = ""
    var depth = 0
    for character in word {
      switch character {
      case "[": depth += 1
      case "]": depth = max(0, depth - 1)
      case "," where depth == 0:
        items.append(current)
        current = ""
        continue
      default: break
      }
      current.append(character)
    }
    items.append(current)
    return items.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
  }
}
