// SSHTransport on a lab host against the conformance suite every transport passes (the unit
// tests run it against LocalTransport), a push with rsync over the host's master, and a run
// whose ssh exits 0 without running the command, which must not report it ok.
// `make test` runs this suite on its own, after the other fleet tests: they block the
// cooperative pool's threads, behind which an in-process transport would wait for minutes
// (see the Makefile).

import Foundation
import Runtime
import TestSupport
import Testing

@Suite(.enabled(if: fleetAvailable), .serialized)
struct TransportFleetTests {
  @Test func sshTransportConforms() async throws {
    let lab = try Lab("conform", hosts: 1, groups: ["lab"])
    let (transport, host) = try Self.transport(on: lab)
    // ssh with `SessionType none` and `ForkAfterAuthentication yes` authenticates, forks and
    // exits 0, running nothing, where it makes a connection of its own: here the master cannot
    // bind its control socket, as a directory holds its place (ssh would replace a stale
    // file), so it disables multiplexing and goes on as such a connection, which serves no
    // session: nothing answers on the socket, and the command must be reported as not run.
    let occupied = try TemporaryDirectory()
    try FileManager.default.createDirectory(atPath: occupied.path + "/" + host.name.rawValue, withIntermediateDirectories: false)
    let (silent, _) = try Self.transport(
      on: lab, sshConfig: "Host *\n  SessionType none\n  ForkAfterAuthentication yes\n", controlDirectory: occupied.path)
    let failures = await TransportConformance.failures(of: transport, on: host, silent: silent)
    await silent.shutdown()
    endMasters(under: occupied.path)  // its ssh, which went on as a connection of its own
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

  /// A master that is gone as soon as ssh has made it (the host closed the connection right
  /// after letting us in, or the master was stopped) has run nothing: it is opened again,
  /// once. Here ssh's LocalCommand, which runs once the master listens and before ssh goes to
  /// the background, takes the master's socket away, as its end would: the first time only,
  /// then every time. ssh that says it could not make the socket is not asked again.
  @Test func aMasterGoneAsSoonAsItWasMadeIsOpenedAgainOnce() async throws {
    let lab = try Lab("gonemast", hosts: 1, groups: ["lab"])
    for firstOnly in [true, false] {
      let sockets = try TemporaryDirectory()
      let scratch = try TemporaryDirectory()
      let opens = scratch.path + "/opens"
      let takeAway = (firstOnly ? "test \"$(wc -l < \(opens))\" -gt 1 || " : "") + "rm -f \(sockets.path)/pc01"
      let (transport, host) = try Self.transport(
        on: lab, sshConfig: "Host *\n  PermitLocalCommand yes\n  LocalCommand echo >> \(opens); \(takeAway)\n",
        controlDirectory: sockets.path)
      let result = await TransportConformance.run(transport, host, "echo ran")
      await transport.shutdown()
      endMasters(under: sockets.path)  // the first master, whose socket was taken away
      let opened = (try? String(contentsOfFile: opens, encoding: .utf8))?.filter { $0 == "\n" }.count
      #expect(opened == 2, "first only: \(firstOnly): ssh opened a master \(opened ?? 0) times")
      if firstOnly {
        #expect(result.termination == .exited(0) && result.stdout == "ran\n", "\(result)")
      } else {
        #expect(
          result.termination == .unreachable(Unreachable(.connectionLost, "connection lost as soon as it was made (nothing ran)")),
          "\(result)")
      }
    }
    // The socket's place is taken (a directory): ssh says so, goes on without it, and is not asked again.
    let occupied = try TemporaryDirectory()
    try FileManager.default.createDirectory(atPath: occupied.path + "/pc01", withIntermediateDirectories: false)
    let scratch = try TemporaryDirectory()  // not the control directory: its end empties it
    let opens = scratch.path + "/opens"
    let (transport, host) = try Self.transport(
      on: lab, sshConfig: "Host *\n  PermitLocalCommand yes\n  LocalCommand echo >> \(opens)\n", controlDirectory: occupied.path)
    let result = await TransportConformance.run(transport, host, "echo ran")
    await transport.shutdown()
    endMasters(under: occupied.path)
    #expect((try? String(contentsOfFile: opens, encoding: .utf8)) == "\n", "ssh was asked more than once")
    guard case .notRun(let message) = result.termination else { Issue.record("\(result)"); return }
    #expect(message.hasPrefix("ssh could not make a control socket for pc01 (ControlSocket ") && message.hasSuffix("disabling multiplexing): nothing ran"), "\(message)")
  }

  /// ssh_config options that make an ssh opening its own connection exit 0 without running
  /// the command. The master is opened on its own (`-N`), and commands ride it, where these
  /// options do not apply: the command runs, and is ok exactly where it ran.
  @Test func anSSHThatRunsNothingIsNotOk() throws {
    let lab = try Lab("nostatus", hosts: 2)
    for option in ["SessionType none", "ForkAfterAuthentication yes"] {
      let config = try lab.storeFile("ssh_config", "Host *\n  \(option)\n")
      let result = try lab.run(#"on all < run "touch /root/ran; echo ran" >"#, ["--json", "--ssh-config", config])
      for step in steps(result) {
        let host = step["host"] as? String ?? "?"
        let ran = try lab.exec(host, "test -e /root/ran").status == 0
        #expect((step["status"] as? String == "ok") == ran, "\(option): \(step)")
        #expect(step["status"] as? String == "ok" || (step["message"] as? String ?? "").contains("no exit status came back"))
        _ = try lab.exec(host, "rm -f /root/ran")
      }
      #expect(steps(result).count == 2, "\(option): \(result.stderr)")
    }
  }

  /// A command gets the host's environment, not the server's: what ssh's `SendEnv` would
  /// pass (the host's sshd accepts `LC_*`) is not sent over a session cfi-sh asks for.
  @Test func theServersEnvironmentDoesNotReachTheCommand() throws {
    let lab = try Lab("sendenv", hosts: 1)
    let config = try lab.storeFile("ssh_config", "Host *\n  SendEnv LC_*\n")
    let accepted = try lab.exec(lab.hosts[0], "sshd -T 2>/dev/null | grep -i '^acceptenv'").stdout
    let result = try lab.cfi(
      ["--ssh-config", config, "-c", #"on all < run 'echo LC_CFI_PROBE=${LC_CFI_PROBE-unset}' >"#],
      environment: ["LC_CFI_PROBE": "from-the-server"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("LC_CFI_PROBE=unset"), "sshd: \(accepted)\n\(result.stdout)")
  }

  /// An SSHTransport with the lab's key, whose paths hold a quote, a space and a `%`; with an
  /// ssh_config file holding `sshConfig` if given.
  static func transport(on lab: Lab, sshConfig: String? = nil, controlDirectory: String? = nil) throws -> (
    SSHTransport, Runtime.Host
  ) {
    let odd = lab.store.path + "/it's a 100% dir"
    try FileManager.default.createDirectory(atPath: odd, withIntermediateDirectories: true)
    if !FileManager.default.fileExists(atPath: odd + "/key 'x'") {
      try FileManager.default.copyItem(atPath: lab.key, toPath: odd + "/key 'x'")
    }
    var configuration = SSHConfiguration(store: Store(root: lab.store.path), identityFile: odd + "/key 'x'")
    if let sshConfig { configuration.configFile = try lab.storeFile("it's a 100% dir/ssh config", sshConfig) }
    configuration.knownHostsFile = odd + "/known hosts"
    configuration.controlDirectory = controlDirectory
    let text = try String(contentsOfFile: lab.inventory, encoding: .utf8)
    let host = try #require(try Inventory.parseStaticList(text, file: lab.inventory).first)
    return (SSHTransport(configuration: configuration), host)
  }
}
