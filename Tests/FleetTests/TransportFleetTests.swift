// SSHTransport on a lab host against the conformance suite every transport passes (the unit
// tests run it against LocalTransport), and a push with rsync over the host's master.

import Foundation
import Runtime
import TestSupport
import Testing

@Suite(.enabled(if: fleetAvailable), .serialized)
struct TransportFleetTests {
  @Test func sshTransportConforms() async throws {
    let lab = try Lab("conform", hosts: 1, groups: ["lab"])
    let (transport, host) = try Self.transport(on: lab)
    let failures = await TransportConformance.failures(of: transport, on: host)
    let store = Store(root: lab.store.path)
    try lab.storeFile("lab/etc/it's odd/motd", "hello\n")
    let executor = ActionExecutor(transport: transport, store: store)
    let pushed = await executor.perform(.copy(path: "etc/it's odd/motd", destination: nil), on: host, options: StepOptions())
    await transport.shutdown()
    #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    #expect(pushed.status == .changed, "\(pushed)")
    #expect(try lab.read(host.name.rawValue, "cat \"/etc/it's odd/motd\"") == "hello")
  }

  /// An SSHTransport with the lab's key, whose paths hold a quote, a space and a `%`.
  static func transport(on lab: Lab) throws -> (SSHTransport, Runtime.Host) {
    let odd = lab.store.path + "/it's a 100% dir"
    try FileManager.default.createDirectory(atPath: odd, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: lab.key, toPath: odd + "/key 'x'")
    var configuration = SSHConfiguration(store: Store(root: lab.store.path), identityFile: odd + "/key 'x'")
    configuration.knownHostsFile = odd + "/known hosts"
    let text = try String(contentsOfFile: lab.inventory, encoding: .utf8)
    let host = try #require(try Inventory.parseStaticList(text, file: lab.inventory).first)
    return (SSHTransport(configuration: configuration), host)
  }
}
