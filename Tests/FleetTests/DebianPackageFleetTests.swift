// The Debian package (`make deb`; `make test` builds it with CONFIGURATION=debug) on a lab host
// that looks like a machine without Swift (`lab hide-toolchain`): installed with dpkg -i, it
// runs, enrolls the host against a server made with `cfi-sh server init`, lets that server in,
// and goes again with dpkg -r (keeping what cfi-sh wrote) and dpkg -P (removing it, but not
// what the admin wrote nor the server's key).

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct DebianPackageFleetTests {
  @Test func thePackageRunsWithoutSwiftEnrollsAndIsRemovedThenPurged() throws {
    let package = try #require(builtPackage(), "no .build/deb/cfi-sh_*.deb: run `make deb CONFIGURATION=debug` (make test does)")
    let version = try shell(["/usr/bin/dpkg-deb", "-f", package, "Version"]).stdout
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let files = try packageFiles(package)
    #expect(files.contains("/usr/bin/cfi-sh"))
    #expect(files.contains("/usr/share/doc/cfi-sh/copyright"))

    // The host is announced only once it enrolls; it sees no Swift toolchain.
    let lab = try Lab("debpkg", hosts: 1, groups: ["lab"], labOptions: ["--no-announce"])
    #expect(try lab.lab("hide-toolchain", "pc01").status == 0)
    #expect(try lab.exec("pc01", "test -e /opt/swift/usr/bin/swift").status != 0)
    let unpackaged = try lab.exec("pc01", "\(labBinary) --version")
    #expect(unpackaged.status != 0, "the toolchain is not hidden: the lab's own build runs")
    #expect(unpackaged.stderr.contains("libswift"), "\(unpackaged.stderr)")

    // dpkg -i: the files are there, the binary runs and links no Swift library; nothing enabled.
    let copied = try shell([
      "/bin/sh", "-c", #"exec /bin/bash "$0" --prefix "$1" exec pc01 sh -c 'cat >/root/cfi-sh.deb' <"$2""#,
      labScript, lab.prefix, package,
    ])
    #expect(copied.status == 0, "\(copied.stderr)")
    let installed = try lab.exec("pc01", "dpkg -i /root/cfi-sh.deb")
    try #require(installed.status == 0, "\(installed.stdout)\(installed.stderr)")
    #expect(try missing(lab, files) == [])
    #expect(try lab.read("pc01", "cfi-sh --version") == version)
    #expect(try lab.read("pc01", "man -w 5 cfi-sh-language") == "/usr/share/man/man5/cfi-sh-language.5.gz")
    let libraries = try lab.exec("pc01", "ldd /usr/bin/cfi-sh")
    #expect(libraries.status == 0)
    #expect(!libraries.stdout.lowercased().contains("swift") && !libraries.stdout.contains("not found"), "\(libraries.stdout)")
    #expect(libraries.stdout.contains("libavahi-client"))
    #expect(try lab.read("pc01", "stat -c '%a %U' /etc/cfi /var/lib/cfi /var/log/cfi") == "755 root\n755 root\n755 root")
    #expect(try lab.read("pc01", "ls /etc/systemd/system/*.wants 2>/dev/null | grep cfi-sh || true").isEmpty, "postinst enabled a unit")

    // A server (cfi-sh server init) announces its key; the packaged cfi-sh enrolls the host.
    let keys = try TemporaryDirectory()
    let identity = keys.path + "/id_ed25519"
    let initialized = try Command.run(["server", "init", "--key", identity, "--services-dir", lab.serverServices])
    try #require(initialized.status == 0, "\(initialized.stderr)")
    let fingerprint = try #require(
      initialized.stdout.split(separator: "\n").first { $0.hasPrefix("fingerprint: ") }?.dropFirst("fingerprint: ".count))
    #expect(try runAsServer(lab, identity).status == 4, "the server's key opens the host before enrollment")
    let enrolled = try lab.exec("pc01", "cfi-sh client enroll --group lab --server-fingerprint \(fingerprint) --wait 20s")
    #expect(enrolled.status == 0, "\(enrolled.stdout)\(enrolled.stderr)")
    try lab.waitUntilAnnounced { $0["pc01"] == "group=lab" }
    let reached = try runAsServer(lab, identity)
    #expect(reached.status == 0, "\(reached.stdout)\(reached.stderr)")
    #expect(reached.stdout.contains(version), "the run's output: the host's cfi-sh --version")

    // dpkg -r: the package's files go; what cfi-sh wrote stays, so the server still gets in.
    try lab.exec("pc01", "echo 'pc01 group=lab' >/etc/cfi/clients; mkdir -p /var/lib/cfi/lab && echo hi >/var/lib/cfi/lab/motd")
    let removed = try lab.exec("pc01", "dpkg -r cfi-sh")
    #expect(removed.status == 0, "\(removed.stdout)\(removed.stderr)")
    #expect(try existing(lab, files) == [], "left by dpkg -r")
    let kept = ["/etc/cfi/server.pin", "/etc/cfi/clients", "/var/lib/cfi/lab/motd", "/var/log/cfi", "/etc/avahi/services/cfi.service"]
    #expect(try missing(lab, kept) == [], "removed by dpkg -r")
    #expect(try runAsServer(lab, identity, command: "true").status == 0, "enrollment outlives dpkg -r")

    // dpkg -P: what cfi-sh wrote goes (pin, audit log, announcement, the server's key line,
    // a timer's enablement link); what the admin wrote, and the server's key that clients
    // pin (pc01 is a server too), stay, and are named. A symlinked authorized_keys stays one.
    let prepared = try lab.exec("pc01", """
      set -e
      touch /etc/cfi/id_ed25519 /etc/cfi/id_ed25519.pub
      mkdir -p /etc/systemd/system/timers.target.wants
      ln -s /lib/systemd/system/cfi-sh-runbook@.timer /etc/systemd/system/timers.target.wants/cfi-sh-runbook@nightly.timer
      mv /root/.ssh/authorized_keys /root/.ssh/authorized_keys.real && ln -s authorized_keys.real /root/.ssh/authorized_keys
      """)
    #expect(prepared.status == 0, "\(prepared.stderr)")
    let purged = try lab.exec("pc01", "dpkg -P cfi-sh")
    #expect(purged.status == 0, "\(purged.stdout)\(purged.stderr)")
    #expect(purged.stderr.contains("cfi-sh: kept /etc/cfi/id_ed25519 (the server's key"), "\(purged.stderr)")
    #expect(try missing(lab, ["/etc/cfi/id_ed25519", "/etc/cfi/id_ed25519.pub"]) == [], "removed by dpkg -P")
    #expect(try lab.exec("pc01", "test -L /etc/systemd/system/timers.target.wants/cfi-sh-runbook@nightly.timer").status != 0)
    #expect(try lab.exec("pc01", "test -L /root/.ssh/authorized_keys").status == 0, "the link was replaced")
    #expect(purged.stderr.contains("cfi-sh: kept /etc/cfi (files the admin wrote)"), "\(purged.stderr)")
    #expect(purged.stderr.contains("cfi-sh: kept /var/lib/cfi (the store"), "\(purged.stderr)")
    #expect(try existing(lab, ["/etc/cfi/server.pin", "/var/log/cfi", "/etc/avahi/services/cfi.service"]) == [], "left by dpkg -P")
    #expect(try lab.read("pc01", "cat /etc/cfi/clients /var/lib/cfi/lab/motd") == "pc01 group=lab\nhi")
    #expect(try lab.read("pc01", "grep -c cfi-sh-server: /root/.ssh/authorized_keys || true") == "0")
    #expect(try lab.read("pc01", "grep -c -- '-lab-client$' /root/.ssh/authorized_keys") == "1", "the lab's own key stays")
    #expect(try lab.exec("pc01", "dpkg-query -W cfi-sh").status != 0)
    #expect(try runAsServer(lab, identity, command: "true").status == 4, "the server's key no longer opens the host")
  }
}

// MARK: - Helpers

private let labScript = Command.packageRoot.appendingPathComponent("scripts/lab").path
/// The build `lab up` copies into every host (linked against the toolchain's Swift libraries).
private let labBinary = "/var/lib/cfi-lab/cfi-sh"

/// The package `make deb` wrote, if any.
private func builtPackage() -> String? {
  let directory = Command.packageRoot.appendingPathComponent(".build/deb").path
  let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
  return names.first { $0.hasPrefix("cfi-sh_") && $0.hasSuffix(".deb") }.map { directory + "/" + $0 }
}

/// The regular files and symbolic links in a package, as installed paths.
private func packageFiles(_ package: String) throws -> [String] {
  let listing = try shell(["/usr/bin/dpkg-deb", "--contents", package]).stdout
  return listing.split(separator: "\n").compactMap { line in
    guard !line.hasPrefix("d"), let path = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first
    else { return nil }
    return String(path.dropFirst())  // "./usr/bin/cfi-sh" → "/usr/bin/cfi-sh"
  }
}

private func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'" }

/// Which of `paths` exist on pc01.
private func existing(_ lab: Lab, _ paths: [String]) throws -> [String] {
  let test = paths.map { "test ! -e \(quoted($0)) || echo \(quoted($0))" }.joined(separator: "; ")
  return try lab.read("pc01", test).split(separator: "\n").map(String.init)
}

/// Which of `paths` do not exist on pc01.
private func missing(_ lab: Lab, _ paths: [String]) throws -> [String] {
  let present = Set(try existing(lab, paths))
  return paths.filter { !present.contains($0) }
}

/// Runs `command` on pc01 as the server: only the server's key, the lab's inventory.
private func runAsServer(_ lab: Lab, _ identity: String, command: String = "cfi-sh --version") throws -> Command {
  let store = try TemporaryDirectory()
  return try Command.run(
    ["--identity", identity, "-i", lab.inventory, "--store", store.path, "--audit-log", "none", "--connect-timeout", "5s",
     "-c", "on host pc01 < run \"\(command)\" >"])
}
