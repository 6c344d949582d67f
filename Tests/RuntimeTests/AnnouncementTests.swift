import Testing

@testable import Runtime
import TestSupport

/// Announcements are untrusted input: only plain host names and known groups get through.
@Suite struct AnnouncementTests {
  private func service(name: String, host: String, port: Int = 22, txt: [String: String] = [:]) -> DiscoveredService {
    DiscoveredService(name: name, hostName: host, address: "10.0.0.5", port: port, txt: txt, interface: 2)
  }

  @Test func aClientWithAKnownGroup() throws {
    let host = try #require(Inventory.host(announcedBy: service(name: "pc01", host: "pc01.local", txt: ["group": "lab"]), knownGroups: ["lab"]))
    #expect(host == Host(name: "pc01", group: "lab", address: "10.0.0.5"))
  }

  @Test(arguments: [["group": "nosuch"], [:], ["group": "../etc"], ["group": "lab; rm -rf /"], ["group": ""]])
  func unknownOrBadGroupsFallBackToUnknown(_ txt: [String: String]) throws {
    let host = try #require(Inventory.host(announcedBy: service(name: "pc01", host: "pc01.local", txt: txt), knownGroups: ["lab"]))
    #expect(host.group == "unknown")
  }

  @Test func aServiceNameStandsInForABadHostName() throws {
    let host = try #require(Inventory.host(announcedBy: service(name: "pc02", host: "bad host.local"), knownGroups: []))
    #expect(host.name == "pc02")
  }

  @Test(arguments: ["$(reboot)", "a b", "pc[01-05]", "@lab", "", "-oProxyCommand=x"])
  func announcementsThatNameNoValidHostAreIgnored(_ name: String) {
    #expect(Inventory.host(announcedBy: service(name: name, host: name + ".local"), knownGroups: []) == nil)
  }

  @Test func aNonStandardPortIsKept() throws {
    let host = try #require(Inventory.host(announcedBy: service(name: "pc03", host: "pc03.local", port: 2222), knownGroups: []))
    #expect(host.port == 2222)
    #expect(Inventory.host(announcedBy: service(name: "pc03", host: "pc03.local", port: 0), knownGroups: []) == nil)
  }
}
