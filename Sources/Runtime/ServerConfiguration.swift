// The server's configuration file (`/etc/cfi/server.conf`): settings that are the site's
// policy rather than a run's, so no runbook and no option of one run changes them: how
// announced hosts are accepted, and how long the run history is kept. One is the site's
// default of a run's setting instead: `persist`, which `set persist` and `--persist` override.

import Foundation

/// What becomes of a host known only from its announcement.
public enum AcceptancePolicy: String, CaseIterable, Sendable {
  /// It is pending and gets nothing until `cfi-sh hosts accept` (the default).
  case pending
  /// It is accepted when first seen (a closed lab's zero-touch flow): anyone who can
  /// announce on the lab's network can then receive its group's tree, scripts and hashes.
  case auto
}

/// The settings of `/etc/cfi/server.conf`: `key = value` lines, `#` comments.
public struct ServerConfiguration: Hashable, Sendable {
  /// Where the file is unless one is named (`CFI_SERVER_CONF`).
  public static let defaultPath = "/etc/cfi/server.conf"

  /// `accept = pending | auto`.
  public var accept: AcceptancePolicy = .pending

  /// `keep_history = 90d | forever`: how long a run stays in the run history; nil: forever.
  /// A store's cron job every five minutes on a few hundred hosts writes some 10 MB a day,
  /// so the default is bounded.
  public var keepHistory: Duration? = ServerConfiguration.defaultKeepHistory

  public static let defaultKeepHistory: Duration = .seconds(90 * 86_400)

  /// `persist = 5m | 0`: how long ssh connections stay open after a run, for the next one
  /// to reuse; nil: not set (`RunSettings.defaultPersist`).
  public var persist: Duration?

  public init(
    accept: AcceptancePolicy = .pending, keepHistory: Duration? = ServerConfiguration.defaultKeepHistory, persist: Duration? = nil
  ) {
    self.accept = accept
    self.keepHistory = keepHistory
    self.persist = persist
  }

  /// The keys the file may set, for messages.
  static let keys = ["accept", "keep_history", "persist"]

  /// Parses the file's text; `file` names it in errors (`file:line: error: …`).
  public init(parsing text: String, file: String) throws(InventoryError) {
    var seen: [String: Int] = [:]
    for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let number = index + 1
      let line = (rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        .trimmingCharacters(in: .whitespaces)
      guard !line.isEmpty else { continue }
      func fail(_ message: String) -> InventoryError { InventoryError(file: file, line: number, message: message) }
      let pair = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      guard pair.count == 2 else { throw fail("expected 'key = value', found '\(line)'") }
      let key = pair[0].trimmingCharacters(in: .whitespaces)
      let value = pair[1].trimmingCharacters(in: .whitespaces)
      guard Self.keys.contains(key) else {
        throw fail("unknown setting '\(key)' (known: \(Self.keys.joined(separator: ", ")))")
      }
      if let earlier = seen[key] { throw fail("'\(key)' is already set on line \(earlier)") }
      seen[key] = number
      switch key {
      case "keep_history":
        if value == "forever" {
          keepHistory = nil
        } else {
          guard let kept = try? Duration(cfiText: value), kept > .zero else {
            throw fail("'keep_history' is a duration such as 90d, or forever, not '\(value)'")
          }
          keepHistory = kept
        }
      case "persist":
        guard let window = try? Duration(cfiText: value == "0" ? "0s" : value), window == .zero || window >= .seconds(1) else {
          throw fail("'persist' is a duration such as 5m, or 0, not '\(value)'")
        }
        persist = window
      default:
        guard let policy = AcceptancePolicy(rawValue: value) else {
          let choices = AcceptancePolicy.allCases.map(\.rawValue).joined(separator: " or ")
          throw fail("'accept' is \(choices), not '\(value)'")
        }
        accept = policy
      }
    }
  }

  /// Reads the file at `path`; a missing file gives the defaults.
  public static func load(_ path: String) throws(InventorySourceError) -> ServerConfiguration {
    guard FileManager.default.fileExists(atPath: path) else { return ServerConfiguration() }
    let text: String
    do { text = try TextFile.read(path) } catch { throw .unreadable(what: "server configuration", path: path, reason: error.reason) }
    do { return try ServerConfiguration(parsing: text, file: path) } catch { throw .invalid(error) }
  }
}
