// Discovery on a real fleet: hosts announce themselves over mDNS with their group, the server
// finds them without a host list, and keeps trying those that fall silent.

import Foundation
import TestSupport
import Testing

/// The rows of `cfi-sh hosts --json`, by host name.
func listed(_ result: Command) -> [String: [String: Any]] {
  var rows: [String: [String: Any]] = [:]
  for line in result.stdout.split(separator: "\n") {
    if let row = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let name = row["name"] as? String {
      rows[name] = row
    }
  }
  return rows
}

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct DiscoveryFleetTests {
  /// cfi-sh on the lab without its client list: only what discovery and memory give. The
  /// seed's zero-touch flow (`accept = auto`): what discovery finds is reached at once
  /// (AcceptanceFleetTests covers the default, where it waits to be accepted).
  private func cfi(_ lab: Lab, _ arguments: [String]) throws -> Command {
    try Command.run(
      arguments, environment: [
        "DBUS_SYSTEM_BUS_ADDRESS": lab.dbus, "CFI_STORE": lab.store.path, "CFI_IDENTITY": lab.key,
        "CFI_AUDIT_LOG": "none", "CFI_SERVER_CONF": try lab.storeFile("server.conf", "accept = auto\n"),
      ])
  }

  @Test func aServerWithoutAHostListFindsEveryHostAndItsGroup() throws {
    let lab = try Lab("disco", hosts: 8, labOptions: ["--group-of", "pc07=nosuchgroup", "--group-of", "pc08="])
    let result = try cfi(lab, ["hosts", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let rows = listed(result)
    #expect(rows.keys.sorted() == lab.hosts)
    let groups = rows.mapValues { $0["group"] as? String ?? "" }
    #expect(groups == [
      "pc01": "lab", "pc02": "lab", "pc03": "lab", "pc04": "lab", "pc05": "office", "pc06": "office",
      "pc07": "unknown", "pc08": "unknown",
    ])
    #expect(rows.values.allSatisfy { $0["online"] as? Bool == true && ($0["sources"] as? [String]) == ["discovered"] })
    // A runbook reaches exactly the group's hosts.
    let run = try cfi(lab, ["--json", "-c", #"on group office < run "touch /root/office" >"#])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(outcomes(run) == ["pc05": "ok", "pc06": "ok"])
    #expect(try lab.exec("pc05", "test -e /root/office").status == 0)
    #expect(try lab.exec("pc01", "test -e /root/office").status != 0)
    let unknown = try cfi(lab, ["--json", "-c", #"on group unknown < run "true" >"#])
    #expect(outcomes(unknown) == ["pc07": "ok", "pc08": "ok"])
  }

  @Test func aHostThatFallsSilentIsStillReached() throws {
    let lab = try Lab("silent2", hosts: 6)
    #expect(try cfi(lab, ["-c", #"on all < run "true" >"#]).status == 0)
    try lab.lab("stop-avahi", "pc02")
    // Wait until the server side no longer sees pc02 announced.
    for _ in 0..<50 {
      if listed(try cfi(lab, ["hosts", "--json"]))["pc02"]?["online"] as? Bool == false { break }
      Thread.sleep(forTimeInterval: 0.3)
    }
    let rows = listed(try cfi(lab, ["hosts", "--json"]))
    #expect(rows["pc02"]?["online"] as? Bool == false)
    #expect(rows["pc02"]?["sources"] as? [String] == ["known"])
    let run = try cfi(lab, ["--json", "-c", #"on group lab < run "touch /root/reached" >"#])
    #expect(outcomes(run) == ["pc01": "ok", "pc02": "ok", "pc03": "ok"])
    #expect(try lab.exec("pc02", "test -e /root/reached").status == 0)
  }

  @Test func aHostThatComesUpLaterIsFound() throws {
    let lab = try Lab("later", hosts: 6)
    try lab.lab("stop-avahi", "pc06")
    Thread.sleep(forTimeInterval: 2)
    let before = try cfi(lab, ["discover"])
    #expect(before.status == 0)
    #expect(!before.stdout.contains("pc06"))
    try lab.lab("start-avahi", "pc06")
    var found = false
    for _ in 0..<30 where !found {
      found = try cfi(lab, ["discover", "--json"]).stdout.contains("\"pc06\"")
      if !found { Thread.sleep(forTimeInterval: 0.3) }
    }
    #expect(found)
    // discover remembered it: without discovery it is still known.
    let known = listed(try cfi(lab, ["hosts", "--json", "--no-discovery"]))
    #expect(known["pc06"]?["sources"] as? [String] == ["known"])
  }

  @Test func discoveryCanBeTurnedOff() throws {
    let lab = try Lab("nodisco", hosts: 5)
    let off = try cfi(lab, ["--json", "--no-discovery", "-c", #"on all < run "true" >"#])
    #expect(off.status == 8, "a block that matched no host")
    #expect(outcomes(off).isEmpty, "no static list, nothing known, no discovery: no hosts")
    let inRunbook = try cfi(lab, ["--json", "-c", "set discovery = off\non all < run \"true\" >"])
    #expect(outcomes(inRunbook).isEmpty)
    let on = try cfi(lab, ["--json", "-c", #"on all < run "true" >"#])
    #expect(outcomes(on).count == 5)
  }

  @Test func serverInitAnnouncesItsKey() throws {
    let lab = try Lab("srvinit", hosts: 5)
    let keys = try TemporaryDirectory()
    let result = try Command.run(
      ["server", "init", "--key", keys.path + "/id_ed25519", "--services-dir", lab.serverServices])
    #expect(result.status == 0, "\(result.stderr)")
    let publicKey = try String(contentsOfFile: keys.path + "/id_ed25519.pub", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    var seen = ""
    for _ in 0..<30 where !seen.contains("key=") {
      seen = try lab.read("pc01", "avahi-browse -rpt _cfi-server._tcp 2>/dev/null | grep '^='")
      if !seen.contains("key=") { Thread.sleep(forTimeInterval: 0.3) }
    }
    #expect(seen.contains("\"key=\(publicKey)\""))
    #expect(seen.contains("\"fp=SHA256:"))
    // Again: the same key, the announcement rewritten.
    let again = try Command.run(
      ["server", "init", "--key", keys.path + "/id_ed25519", "--services-dir", lab.serverServices])
    #expect(again.stdout.contains("keeping"))
  }
}
