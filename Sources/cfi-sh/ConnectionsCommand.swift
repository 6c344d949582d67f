// `cfi-sh connections`: the ssh masters kept open after runs (`--persist`, `set persist`),
// as Runtime's `PersistentMasters` finds them — list them, close them. Rendering only.

import ArgumentParser
import Foundation
import Runtime

struct ConnectionsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "connections",
    abstract: "List the ssh connections kept open after runs; close them.",
    discussion: """
      A run leaves its ssh connections (OpenSSH ControlMasters) open for its
      persist window (--persist, 'set persist', server.conf's persist; 5m by
      default); the next run within it, runbook, 'cfi-sh run' or shell, reuses
      them instead of connecting again, unless the host's pinned key, the user,
      port, address, identity or ssh_config differ. A connection closes once
      idle for its window. Their sockets are in /run/cfi/persist/ for root
      ($XDG_RUNTIME_DIR/cfi/persist/ for others, or CFI_RUNTIME_DIR/persist/),
      a directory only its owner can enter: whoever can use them is root on
      the hosts already.
      """,
    subcommands: [List.self, Close.self],
    defaultSubcommand: List.self)

  /// The masters of this user; nil, said on stderr, when there is no place for them.
  static func masters() -> PersistentMasters? {
    guard let masters = PersistentMasters.forUser() else {
      Stream.say("no runtime directory of cfi's own (/run/cfi, $XDG_RUNTIME_DIR or CFI_RUNTIME_DIR): connections do not persist")
      return nil
    }
    return masters
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "list",
      abstract: "List the connections kept open.",
      discussion: """
        Columns: the host, the user and port, the pid of the master, how long it
        has been open, how long since a run last used it, and in how long it
        closes unless used again.
        """)

    @Flag(help: "One JSON object per line.")
    var json = false

    func run() async throws {
      guard let masters = ConnectionsCommand.masters() else { return }
      print(ConnectionsRendering.list(masters.list(), json: json, now: Date()), terminator: "")
    }
  }

  struct Close: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "close",
      abstract: "Close connections kept open: all of them, or those of the hosts named.",
      discussion: """
        The next run to those hosts connects afresh. Example:
            cfi-sh connections close 'pc[01-05]'
        """)

    @Argument(help: ArgumentHelp("Only the connections of these hosts, e.g. 'pc[01-05]' or 'web1'.", valueName: "pattern"))
    var patterns: [String] = []

    func run() async throws {
      guard let masters = ConnectionsCommand.masters() else { return }
      let closed: [PersistentMaster]
      if patterns.isEmpty {
        closed = masters.close()
      } else {
        if let group = patterns.first(where: { $0.contains("@") }) {
          throw CommandFailure.usage("'\(group)': connections are closed by host name, not group")
        }
        let names: Set<HostName>
        do throws(HostPatternError) {
          names = try HostPattern.names(patterns) { _ in [] }
        } catch {
          throw CommandFailure.usage(error.message)
        }
        closed = masters.close { master in HostName(master.record.host).map(names.contains) ?? false }
      }
      for master in closed { print("closed \(ConnectionsRendering.destination(master)) (pid \(master.pid))") }
      if closed.isEmpty { print("no connection to close") }
    }
  }
}

/// The listing's text and JSON.
enum ConnectionsRendering {
  static func list(_ masters: [PersistentMaster], json: Bool, now: Date) -> String {
    if json {
      return masters.map { master in
        let object: [String: Any] = [
          "host": master.record.host, "user": master.record.user, "port": master.record.port ?? 22,
          "address": master.record.address, "pid": Int(master.pid), "window": master.record.window,
          "opened": Int(master.record.opened.timeIntervalSince1970), "last_used": Int(master.lastUsed.timeIntervalSince1970),
          "closes": Int(master.closes.timeIntervalSince1970),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
      }.joined()
    }
    guard !masters.isEmpty else { return "no connections kept open\n" }
    let rows =
      [["HOST", "USER", "PORT", "PID", "OPEN", "IDLE", "CLOSES IN"]]
      + masters.map { master in
        [
          master.record.host, master.record.user, String(master.record.port ?? 22), String(master.pid),
          span(now.timeIntervalSince(master.record.opened)), span(now.timeIntervalSince(master.lastUsed)),
          span(master.closes.timeIntervalSince(now)),
        ]
      }
    let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
    return rows.map { row in
      row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        .trimmingCharacters(in: .whitespaces) + "\n"
    }.joined()
  }

  /// `user@host` with the port when it is not 22.
  static func destination(_ master: PersistentMaster) -> String {
    "\(master.record.user)@\(master.record.host)" + (master.record.port.map { $0 == 22 ? "" : ":\($0)" } ?? "")
  }

  /// A span of time as `42s`, `4m12s`, `1h05m` (none below zero).
  static func span(_ seconds: TimeInterval) -> String {
    let whole = max(0, Int(seconds))
    if whole < 60 { return "\(whole)s" }
    if whole < 3600 { return "\(whole / 60)m" + String(format: "%02ds", whole % 60) }
    return "\(whole / 3600)h" + String(format: "%02dm", whole % 3600 / 60)
  }
}
