// ServerIdentity: which names and addresses mean this server.

import Foundation
import Runtime
import Testing
import TestSupport

@Suite("ServerIdentity")
struct ServerIdentityTests {
  let server = ServerIdentity(names: ["Build01.example.org", "build01"], addresses: ["10.210.0.1", "fe80::1%br0", "2001:db8::7"])

  @Test(arguments: [
    "localhost", "LOCALHOST", "localhost.", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "localhost6",
    "127.0.0.1", "127.0.1.1", "127.255.255.254", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1",
    "build01", "build01.example.org", "BUILD01.EXAMPLE.ORG", "10.210.0.1", "fe80::1", "fe80::1%eth0",
    "2001:DB8:0:0:0:0:0:7",
  ])
  func theseMeanTheServer(_ text: String) {
    #expect(server.isServer(text))
  }

  @Test(arguments: [
    "pc01", "localhost2", "mylocalhost", "build02", "build01.example.com", "10.210.0.2", "128.0.0.1", "::2",
    "fe80::2", "2001:db8::8", "", "local",
  ])
  func theseDoNot(_ text: String) {
    #expect(!server.isServer(text))
  }

  @Test func aHostIsTheServerByItsNameOrItsAddress() {
    #expect(server.contains(Runtime.Host(name: "localhost")))
    #expect(server.contains(Runtime.Host(name: "gw", address: "10.210.0.1")))
    #expect(server.contains(Runtime.Host(name: "self", address: "build01")))
    #expect(!server.contains(Runtime.Host(name: "pc01", address: "10.210.0.2")))
  }

  @Test func thisMachineIsKnownByItsHostNameLoopbackAndInterfaceAddresses() throws {
    let current = ServerIdentity.current()
    let name = ProcessInfo.processInfo.hostName
    #expect(current.isServer("localhost"))
    #expect(current.isServer("127.0.0.1"))
    #expect(current.isServer(name))
    #expect(current.isServer(String(name.split(separator: ".")[0])))
    // Every IPv4 address `ip` lists for this machine (the lab bridge's among them) is the server.
    let text = try Command.run(["-o", "-4", "addr", "show"], executable: URL(fileURLWithPath: "/usr/sbin/ip")).stdout
    let addresses = text.split(separator: "\n").compactMap { line -> String? in
      let words = line.split(separator: " ")
      guard let index = words.firstIndex(of: "inet"), index + 1 < words.count else { return nil }
      return words[index + 1].split(separator: "/").first.map(String.init)
    }
    #expect(!addresses.isEmpty)
    for address in addresses { #expect(current.isServer(address), "\(address)") }
  }
}
