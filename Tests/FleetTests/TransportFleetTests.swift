// SSHTransport on a lab host against the conformance suite every transport passes (the unit
// tests run it against LocalTransport), a push with rsync over the host's master, and a run
// whose ssh exits 0 without running the command, which must not report it ok.

import Foundation
import Runtime
import TestSupport
import Testing

@Suite(.enabled(if: fleetAvailable), .serialized)
struct TransportFleetTests {
  @Test func sshTransportConforms() async throws {
    let lab = try Lab("conform", hosts: 1, groups: ["lab"])
    let (transport, host) = try Self.transport(on: lab)
    // ssh opening a master with `SessionType none` authenticates, forks the master and exits 0,
    // running nothing.
    let (silent, _) = try Self.transport(on: lab, sshConfig: "Host *\n  SessionType none\n")
    let failures = await TransportConformance.failures(of: transport, on: host, silent: silent)
    await silent.shutdown()
    // ssh waits for the end of the remote stderr: what comes after the status report is kept.
    let late = await TransportConformance.run(transport, host, TransportConformance.lateOutputScript)
    let store = Store(root: lab.store.path)
    try lab.storeFile("lab/etc/it's odd/motd", "hello\n")
    let executor = ActionExecutor(transport: transport, store: store)
    let pushed = await executor.perform(.copy(path: "etc/it's odd/motd", destination: nil), on: host, options: StepOptions())
    await transport.shutdown()
    #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    #expect(late.termination == .exited(4) && late.stderr == "earlylate" && late.stdout == "after\n", "\(late)")
    #expect(pushed.status == .changed, "\(pushed)")
    #expect(try lab.read(host.name.rawValue, "cat \"/etc/it's odd/motd\"") == "hello")
  }

  /// ssh_config options that make ssh exit 0 without running the command (when it opens the
  /// master, as a host's first command does): the step is not ok, and the run says why.
  @Test func anSSHThatRunsNothingIsNotOk() throws {
    let lab = try Lab("nostatus", hosts: 2)
    for option in ["SessionType none", "ForkAfterAuthentication yes"] {
      let config = try lab.storeFile("ssh_config", "Host *\n  \(option)\n")
      let result = try lab.run(#"on all < run "touch /root/ran" >"#, ["--json", "--ssh-config", config])
      #expect(result.status == 2, "\(option): \(result.stderr)")
      #expect(outcomes(result) == ["pc01": "failed", "pc02": "failed"], "\(option)")
      for step in steps(result) {
        let message = step["message"] as? String ?? ""
        #expect(message.contains("no exit status came back from \(step["host"] as? String ?? "?")"), "\(option): \(message)")
      }
      for host in lab.hosts { #expect(try lab.exec(host, "test -e /root/ran").status != 0, "\(option): ran on \(host)") }
    }
  }

  /// An SSHTransport with the lab's key, whose paths hold a quote, a space and a `%`; with an
  /// ssh_config file holding `sshConfig` if given.
  static func transport(on lab: Lab, sshConfig: String? = nil) throws -> (SSHTransport, Runtime.Host) {
    let odd = lab.store.path + "/it's a 100% dir"
    try FileManager.default.createDirectory(atPath: odd, withIntermediateDirectories: true)
    if !FileManager.default.fileExists(atPath: odd + "/key 'x'") {
      try FileManager.default.copyItem(atPath: lab.key, toPath: odd + "/key 'x'")
    }
    var configuration = SSHConfiguration(store: Store(root: lab.store.path), identityFile: odd + "/key 'x'")
    if let sshConfig { configuration.configFile = try lab.storeFile("it's a 100% dir/ssh config", sshConfig) }
    configuration.knownHostsFile = odd + "/known hosts"
    let text = try String(contentsOfFile: lab.inventory, encoding: .utf8)
    let host = try #require(try Inventory.parseStaticList(text, file: lab.inventory).first)
    return (SSHTransport(configuration: configuration), host)
  }
}
