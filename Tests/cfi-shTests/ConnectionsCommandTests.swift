// `--persist` and `cfi-sh connections` without a fleet: where the window comes from (the
// option or CFI_PERSIST, which `set persist` does not override; else server.conf; else 5
// minutes), the listing's text and JSON, and the command on a machine with nothing open.
// (Masters that really persist are the fleet tests': PersistFleetTests.)

import Foundation
import Runtime
import TestSupport
import Testing

@testable import cfi_sh

@Suite struct ConnectionsCommandTests {
  static func window(_ given: String?, site: Duration? = nil) throws -> (Duration, locked: Bool) {
    var settings = RunSettings()
    var locked: Set<String> = []
    try CFISh.applyPersist(given, configuration: { ServerConfiguration(persist: site) }, to: &settings, locked: &locked)
    return (settings.persist, locked.contains("persist"))
  }

  @Test func theWindowComesFromTheOptionThenServerConfThenTheDefault() throws {
    #expect(try Self.window(nil) == (.seconds(300), false))
    #expect(try Self.window(nil, site: .seconds(60)) == (.seconds(60), false))
    #expect(try Self.window("10m", site: .seconds(60)) == (.seconds(600), true))
    #expect(try Self.window("0", site: .seconds(60)) == (.zero, true))
    #expect(try Self.window("90") == (.seconds(90), true))
    #expect(throws: (any Error).self) { try Self.window("500ms") }
    #expect(throws: (any Error).self) { try Self.window("soon") }
  }

  @Test func aBadPersistIsAUsageError() throws {
    let result = try Command.run(["--persist", "soon", "-c", "print 1"])
    #expect(result.status == 64)
    #expect(result.stderr.contains("--persist"), "\(result.stderr)")
  }

  @Test func theListing() {
    let opened = Date(timeIntervalSince1970: 1_700_000_000)
    let masters = [
      PersistentMaster(
        record: .init(host: "pc01", user: "root", port: nil, address: "192.0.2.11", window: 300, opened: opened, pin: ""),
        socket: "/run/cfi/persist/a", lastUsed: opened.addingTimeInterval(60), pid: 4242),
      PersistentMaster(
        record: .init(host: "web-frontend1", user: "admin", port: 2222, address: "192.0.2.12", window: 7200, opened: opened, pin: ""),
        socket: "/run/cfi/persist/b", lastUsed: opened.addingTimeInterval(100), pid: 4243),
    ]
    let now = opened.addingTimeInterval(130)
    #expect(
      ConnectionsRendering.list(masters, json: false, now: now) == """
        HOST           USER   PORT  PID   OPEN   IDLE   CLOSES IN
        pc01           root   22    4242  2m10s  1m10s  3m50s
        web-frontend1  admin  2222  4243  2m10s  30s    1h59m

        """)
    let lines = ConnectionsRendering.list(masters, json: true, now: now).split(separator: "\n")
    #expect(
      lines.first
        == #"{"address":"192.0.2.11","closes":1700000360,"host":"pc01","last_used":1700000060,"opened":1700000000,"pid":4242,"port":22,"user":"root","window":300}"#
    )
    #expect(ConnectionsRendering.list([], json: false, now: now) == "no connections kept open\n")
    #expect(ConnectionsRendering.destination(masters[1]) == "admin@web-frontend1:2222")
  }

  @Test func nothingOpen() throws {
    let listed = try Command.run(["connections"])
    #expect(listed.status == 0 && listed.stdout == "no connections kept open\n", "\(listed.stderr)")
    let closed = try Command.run(["connections", "close", "pc[01-03]"])
    #expect(closed.status == 0 && closed.stdout == "no connection to close\n", "\(closed.stderr)")
    let group = try Command.run(["connections", "close", "@lab"])
    #expect(group.status == 64 && group.stderr.contains("by host name, not group"), "\(group.stderr)")
  }
}
