// Acceptance on a real fleet: every lab host is a would-be rogue (its own netns, avahi and
// sshd, the server's key in its authorized_keys), announcing a group of its choice. With no
// host list, a host known only from its announcement gets nothing until accepted; an
// accepted host's group and address never change by announcement.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct AcceptanceFleetTests {
  /// cfi-sh on the lab with no host list: only the store's records and the announcements the
  /// lab's server-side avahi sees; `accept = auto` when `auto`.
  private func cfi(_ lab: Lab, _ arguments: [String], auto: Bool = false) throws -> Command {
    var environment = [
      "DBUS_SYSTEM_BUS_ADDRESS": lab.dbus, "CFI_STORE": lab.store.path, "CFI_IDENTITY": lab.key,
      "CFI_AUDIT_LOG": "none",
    ]
    if auto { environment["CFI_SERVER_CONF"] = try lab.storeFile("server.conf", "accept = auto\n") }
    return try Command.run(arguments, environment: environment)
  }

  /// The rows of `hosts --pending --json` (or `--rejected`), once `ready` holds for them.
  private func pending(_ lab: Lab, _ flag: String = "--pending", until ready: ([String: [String: Any]]) -> Bool)
    throws -> [String: [String: Any]]
  {
    var rows: [String: [String: Any]] = [:]
    for _ in 0..<40 {
      rows = [:]
      for line in try cfi(lab, ["hosts", flag, "--json"]).stdout.split(separator: "\n") {
        guard let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
          let name = row["name"] as? String
        else { continue }
        rows[name + ((row["port"] as? Int).map { $0 == 22 ? "" : ":\($0)" } ?? "")] = row
      }
      if ready(rows) { return rows }
      Thread.sleep(forTimeInterval: 0.3)
    }
    Issue.record("pending hosts never became as expected: \(rows)")
    return rows
  }

  /// Makes `host` announce `_cfi._tcp` through the service file `file` (`cfi`: the one
  /// `client enroll` wrote), and makes its avahi reload.
  private func announce(_ lab: Lab, _ host: String, file: String, group: String, port: Int = 22, name: String = "%h")
    throws
  {
    let service = """
      <?xml version="1.0" standalone="no"?>
      <!DOCTYPE service-group SYSTEM "avahi-service.dtd">
      <service-group><name replace-wildcards="yes">\(name)</name>
      <service protocol="ipv4"><type>_cfi._tcp</type><port>\(port)</port><txt-record>group=\(group)</txt-record></service>
      </service-group>
      """
    let written = try lab.exec(
      host,
      "cat >/etc/avahi/services/\(file).service <<'EOF'\n\(service)\nEOF\nkill -HUP $(cat /run/avahi-daemon/pid)")
    #expect(written.status == 0, "\(written.stderr)")
  }

  @Test func aHostKnownOnlyFromItsAnnouncementGetsNothingUntilAccepted() throws {
    let lab = try Lab("acceptnew", hosts: 4, labOptions: ["--group-of", "pc03=lab", "--group-of", "pc04=office"])
    let all = try pending(lab) { $0.count == 4 }
    #expect(all.values.allSatisfy { $0["state"] as? String == "new" })
    #expect(all["pc01"]?["group"] as? String == "lab" && all["pc04"]?["group"] as? String == "office")

    // Nothing is reached: every block matched no host, and the run says why.
    let none = try cfi(lab, ["--json", "-c", #"on all < run "touch /root/reached" >"#])
    #expect(none.status == 8, "\(none.stderr)")
    #expect(none.stderr.contains("4 announced hosts pending acceptance"), "\(none.stderr)")
    #expect(none.stderr.contains("pc[01-04]"))
    #expect(outcomes(none).isEmpty)
    for host in lab.hosts { #expect(try lab.exec(host, "test -e /root/reached").status != 0) }

    let accepted = try cfi(lab, ["hosts", "accept", "pc01"])
    #expect(accepted.status == 0, "\(accepted.stderr)")
    #expect(accepted.stdout.hasPrefix("pc01: accepted, group lab at "), "\(accepted.stdout)")
    let one = try cfi(lab, ["--json", "-c", #"on group lab < run "touch /root/reached" >"#])
    #expect(outcomes(one) == ["pc01": "ok"], "\(one.stderr)")
    #expect(try lab.exec("pc02", "test -e /root/reached").status != 0)

    // A runbook that names a pending host accepts it, as the client list would.
    let named = try cfi(lab, ["--json", "-c", #"on host pc02 < run "touch /root/named" >"#])
    #expect(outcomes(named) == ["pc02": "ok"], "\(named.stderr)")
    #expect(try lab.exec("pc02", "test -e /root/named").status == 0)

    // A rejected host is no longer pending, and --all does not take it back.
    #expect(try cfi(lab, ["hosts", "reject", "pc04"]).stdout.hasPrefix("pc04: rejected, group office at "))
    let rest = try pending(lab) { $0.count == 1 }
    #expect(rest.keys.sorted() == ["pc03"])
    #expect(try pending(lab, "--rejected") { $0.count == 1 }.keys.sorted() == ["pc04"])
    // A name announced two ways is refused until one of them is picked.
    try announce(lab, "pc03", file: "rogue", group: "office", port: 2222, name: "rogue")
    _ = try pending(lab) { $0["pc03:2222"] != nil }
    let acceptAll = try cfi(lab, ["hosts", "accept", "--all"])
    #expect(acceptAll.status == 1)
    #expect(acceptAll.stdout.isEmpty)
    #expect(acceptAll.stderr.contains("pc03 is announced 2 ways"), "\(acceptAll.stderr)")
    #expect(try cfi(lab, ["hosts", "accept", "pc03", "--group", "lab"]).status == 0)
    #expect(try cfi(lab, ["hosts", "reject", "pc03"]).stdout.contains("port 2222"))
    let three = try cfi(lab, ["--json", "-c", #"on all < run "true" >"#])
    #expect(outcomes(three) == ["pc01": "ok", "pc02": "ok", "pc03": "ok"], "\(three.stderr)")
    #expect(!three.stderr.contains("pending acceptance"), "nothing pending but the rejected host: \(three.stderr)")

    let unknown = try cfi(lab, ["hosts", "accept", "pc99"])
    #expect(unknown.status == 1)
    #expect(unknown.stderr.contains("'pc99': no pending host matches"))
  }

  @Test func anAnnouncementNeverChangesAnAcceptedHost() throws {
    let lab = try Lab("rebind", hosts: 3, labOptions: ["--group-of", "pc03=office"])
    // `auto`: a new host is reached at once, and remembered with its group.
    var first = Command(status: -1, stdout: "", stderr: "")
    for _ in 0..<40 where outcomes(first).count < 3 {
      first = try cfi(lab, ["--json", "-c", #"on all < run "true" >"#], auto: true)
    }
    #expect(outcomes(first) == ["pc01": "ok", "pc02": "ok", "pc03": "ok"], "\(first.stderr)")

    // pc02 now claims group office: a pending change, even under auto; it stays in lab.
    try announce(lab, "pc02", file: "cfi", group: "office")
    // pc01's unprivileged user publishes a second service under pc01's name, on another port.
    try announce(lab, "pc01", file: "rogue", group: "office", port: 2222, name: "rogue")
    let changes = try pending(lab) { $0["pc02"] != nil && $0["pc01:2222"] != nil }
    #expect(changes["pc02"]?["state"] as? String == "change")
    #expect(changes["pc02"]?["changes"] as? [String] == ["group lab → office"])
    #expect(changes["pc01:2222"]?["changes"] as? [String] == ["group lab → office", "port 22 → 2222"])
    for auto in [false, true] {
      let office = try cfi(lab, ["--json", "-c", #"on group office < run "touch /root/office" >"#], auto: auto)
      #expect(outcomes(office) == ["pc03": "ok"], "auto \(auto): \(office.stderr)")
      let labGroup = try cfi(lab, ["--json", "-c", #"on group lab < run "true" >"#], auto: auto)
      #expect(outcomes(labGroup) == ["pc01": "ok", "pc02": "ok"], "auto \(auto): \(labGroup.stderr)")
    }
    #expect(try lab.exec("pc02", "test -e /root/office").status != 0)

    // Accepting the change moves pc02; the rogue claim stays pending until rejected.
    let accepted = try cfi(lab, ["hosts", "accept", "pc02"])
    #expect(accepted.stdout == "pc02: accepted, group lab → office\n", "\(accepted.stderr)")
    let office = try cfi(lab, ["--json", "-c", #"on group office < run "touch /root/office" >"#])
    #expect(outcomes(office) == ["pc02": "ok", "pc03": "ok"], "\(office.stderr)")
    #expect(try cfi(lab, ["hosts", "reject", "pc01", "--group", "office"]).status == 0)
    let settled = try cfi(lab, ["--json", "-c", #"on all < run "true" >"#])
    #expect(!settled.stderr.contains("pending acceptance"), "\(settled.stderr)")
  }
}
