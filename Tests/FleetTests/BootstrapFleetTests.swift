// `cfi-sh server bootstrap-script` on lab hosts: the script runs inside a host (`lab exec HOST
// sh -s`, as root, as a preseed late_command or cloud-init would run it) whose avahi announces
// nothing of its own (`--no-announce`), so what the server side sees is what the script did.
// Without a .deb: the host announces itself with its group and lets the server's key in. With
// one (`make deb CONFIGURATION=debug`, served over the lab's bridge): cfi-sh is installed and
// the host enrolled against the server's announcement, or, with no avahi running, left to
// cfi-sh-enroll.service.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct BootstrapFleetTests {
  @Test func withoutADebTheHostAnnouncesItsGroupAndLetsTheServerIn() throws {
    let lab = try Lab("bootfiles", hosts: 2, groups: ["lab"], labOptions: ["--no-announce"])
    let server = try ServerKeys()
    try server.initialize()
    #expect(try server.reach(lab, "pc01").status == 4, "the new key opens nothing yet")

    let script = try Command.run(["server", "bootstrap-script", "--group", "office", "--identity", server.key])
    #expect(script.status == 0, "\(script.stderr)")
    let first = try runScript(script.stdout, in: lab, "pc01")
    #expect(first.status == 0, "\(first.stderr)")
    #expect(first.stderr.contains("cfi bootstrap: done: this machine announces itself in the group office"), "\(first.stderr)")

    // Announced with its group (pc02, which did not run it, is not), reached as root.
    try lab.waitUntilAnnounced { $0["pc01"] == "group=office" }
    #expect(try lab.announced()["pc02"] == nil)
    let reached = try server.reach(lab, "pc01")
    #expect(reached.status == 0, "\(reached.stdout)\(reached.stderr)")
    #expect(try server.reach(lab, "pc02").status == 4)
    #expect(try lab.read("pc01", "grep -c 'cfi-sh-server:\(server.fingerprint)$' /root/.ssh/authorized_keys") == "1")
    #expect(try lab.read("pc01", "grep -c -- '-lab-client$' /root/.ssh/authorized_keys") == "1", "the lab's own key stays")
    #expect(try lab.read("pc01", "grep -v '^#' /etc/cfi/server.pin") == server.fingerprint)

    // Again: nothing to write.
    let second = try runScript(script.stdout, in: lab, "pc01")
    #expect(second.status == 0, "\(second.stderr)")
    #expect(!second.stderr.contains("wrote"), "\(second.stderr)")
    #expect(try lab.read("pc01", "grep -c 'cfi-sh-server:' /root/.ssh/authorized_keys") == "1")
  }

  @Test func withoutAServerKeyNoScriptIsPrinted() throws {
    let empty = try TemporaryDirectory()
    let refused = try Command.run(["server", "bootstrap-script", "--group", "lab", "--identity", empty.path + "/id_ed25519"])
    #expect(refused.status == 1)
    #expect(refused.stdout.isEmpty)
    #expect(refused.stderr.contains("there is no public key \(empty.path)/id_ed25519.pub: run 'cfi-sh server init' first"), "\(refused.stderr)")
    for arguments in [["--group", "no spaces"], ["--deb-url", "ftp://x/y.deb"], ["--port", "0"]] {
      #expect(try Command.run(["server", "bootstrap-script"] + arguments).status == 64, "\(arguments)")
    }
  }

  /// The package `make deb CONFIGURATION=debug` builds; CI builds it before the fleet tests.
  static let package: String? = {
    let directory = Command.packageRoot.appendingPathComponent(".build/deb").path
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasPrefix("cfi-sh_") && $0.hasSuffix(".deb") }.sorted().last.map { directory + "/" + $0 }
  }()

  @Test(.enabled(if: package != nil || ProcessInfo.processInfo.environment["CI"] == "true", "no .build/deb/cfi-sh_*.deb (make deb CONFIGURATION=debug)"))
  func withADebCfiShIsInstalledAndEnrollsNowOrAtBoot() throws {
    let package = try #require(Self.package, "no .build/deb/cfi-sh_*.deb: make deb CONFIGURATION=debug")
    let lab = try Lab("bootdeb", hosts: 2, groups: ["lab"], labOptions: ["--no-announce"])
    let server = try ServerKeys()
    try server.initialize(announcingIn: lab.serverServices)
    let web = try WebServer(serving: package, on: lab.serverAddress)
    defer { web.stop() }

    func bootstrapScript(sha256: String) throws -> Command {
      try Command.run(
        ["server", "bootstrap-script", "--group", "lab", "--identity", server.key, "--deb-url", web.url, "--deb-sha256", sha256])
    }
    let sum = try Command.run([package], executable: URL(fileURLWithPath: "/usr/bin/sha256sum")).stdout.prefix(64)
    let script = try bootstrapScript(sha256: String(sum))
    #expect(script.status == 0, "\(script.stderr)")
    #expect(!script.stderr.contains("warning"), "\(script.stderr)")

    // A .deb that is not the one the script names is not installed.
    let altered = try runScript(try bootstrapScript(sha256: String(repeating: "0", count: 64)).stdout, in: lab, "pc02")
    #expect(altered.status != 0)
    #expect(altered.stderr.contains("is not the one expected"), "\(altered.stderr)")
    #expect(try lab.exec("pc02", "dpkg-query -W cfi-sh").status != 0, "nothing installed")

    // The hosts have no systemd: the lab's stand-in systemctl knows a unit by its directory
    // (scripts/README.md, "How the lab fakes systemd"), as systemd knows the installed one.
    for host in lab.hosts { try lab.exec(host, "mkdir -p \(Self.enrollUnitState)") }

    // pc01 is live (avahi-daemon runs): installed and enrolled at once.
    let live = try runScript(script.stdout, in: lab, "pc01")
    #expect(live.status == 0, "\(live.stdout)\(live.stderr)")
    #expect(live.stderr.contains("cfi bootstrap: enrolled"), "\(live.stderr)")
    #expect(try lab.read("pc01", "dpkg-query -W -f '${Status}' cfi-sh") == "install ok installed")
    #expect(try lab.read("pc01", "/usr/bin/cfi-sh --version").isEmpty == false)
    #expect(try lab.read("pc01", "grep -v '^#' /etc/cfi/server.pin") == server.fingerprint)
    #expect(try lab.read("pc01", "grep '^ENROLL_OPTIONS=' /etc/default/cfi-sh") == "ENROLL_OPTIONS=\"--group lab --server-fingerprint \(server.fingerprint)\"")
    #expect(try lab.exec("pc01", "test -e \(Self.enrollUnitState)/enabled").status != 0, "enrolled: no unit needed")
    try lab.waitUntilAnnounced { $0["pc01"] == "group=lab" }
    let reached = try server.reach(lab, "pc01")
    #expect(reached.status == 0, "\(reached.stdout)\(reached.stderr)")

    // pc02 without avahi-daemon (as in the installer's chroot): installed, and the unit that
    // enrolls at boot is enabled.
    #expect(try lab.lab("stop-avahi", "pc02").status == 0)
    let offline = try runScript(script.stdout, in: lab, "pc02")
    #expect(offline.status == 0, "\(offline.stdout)\(offline.stderr)")
    #expect(offline.stderr.contains("cfi-sh-enroll.service enabled"), "\(offline.stderr)")
    #expect(try lab.exec("pc02", "test -f /lib/systemd/system/cfi-sh-enroll.service").status == 0, "the package's unit")
    #expect(try lab.exec("pc02", "test -e \(Self.enrollUnitState)/enabled").status == 0)
    #expect(try lab.read("pc02", "grep -c '^ENROLL_OPTIONS=\"--group lab ' /etc/default/cfi-sh") == "1")
    #expect(try server.reach(lab, "pc02").status == 4, "not enrolled before its boot")
  }

  /// Where the lab's stand-in systemctl keeps cfi-sh-enroll.service's state.
  static let enrollUnitState = "/var/lib/cfi-lab-systemd/cfi-sh-enroll.service"

  // MARK: - Helpers

  /// Runs `script` with `sh -s` inside `host`, as root.
  private func runScript(_ script: String, in lab: Lab, _ host: String) throws -> Command {
    try shell(
      ["/bin/bash", Command.packageRoot.appendingPathComponent("scripts/lab").path, "--prefix", lab.prefix, "exec", host, "sh", "-s"],
      stdin: script)
  }
}

/// A server key made by `cfi-sh server init` in a temporary directory.
private struct ServerKeys {
  let directory: TemporaryDirectory
  var key: String { directory.path + "/id_ed25519" }
  var fingerprint: String {
    (try? shell(["/usr/bin/ssh-keygen", "-l", "-E", "sha256", "-f", key + ".pub"]).stdout.split(separator: " ")[1]).map(String.init) ?? ""
  }

  init() throws { directory = try TemporaryDirectory() }

  /// `cfi-sh server init`: the key, announced in `services` (the lab's server side) if given.
  func initialize(announcingIn services: String? = nil) throws {
    let announce = services.map { ["--services-dir", $0] } ?? ["--no-announce"]
    let result = try Command.run(["server", "init", "--key", key] + announce)
    #expect(result.status == 0, "\(result.stderr)")
  }

  /// Runs `on host HOST < run "true" >` with this key only: 0 when it lets the server in.
  func reach(_ lab: Lab, _ host: String) throws -> Command {
    let store = try TemporaryDirectory()
    return try Command.run(
      ["--identity", key, "-i", lab.inventory, "--store", store.path, "--audit-log", "none", "--connect-timeout", "5s",
       "-c", "on host \(host) < run \"true\" >"])
  }
}

/// `python3 -m http.server` serving one file's directory on the lab's bridge, on a port it
/// picks; ready once it says where it listens.
private final class WebServer {
  let process = Process()
  let url: String

  init(serving file: String, on address: String) throws {
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
      "python3", "-u", "-m", "http.server", "0", "--bind", address, "--directory", (file as NSString).deletingLastPathComponent,
    ]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    // "Serving HTTP on 10.1.2.1 port 41234 (http://10.1.2.1:41234/) ..."
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      line += chunk
    }
    let text = String(decoding: line, as: UTF8.self)
    let port = text.firstMatch(of: /port (\d+)/).map { String($0.1) }
    guard let port else {
      kill(process.processIdentifier, SIGKILL)
      Issue.record("python3 -m http.server did not start: \(text)")
      throw CancellationError()
    }
    url = "http://\(address):\(port)/\((file as NSString).lastPathComponent)"
  }

  /// SIGKILL: the test process's threads block SIGTERM, and a child started from one keeps
  /// that mask, so python would never see a terminate().
  func stop() {
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }
}
