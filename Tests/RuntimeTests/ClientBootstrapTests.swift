// The bootstrap script of `cfi-sh server bootstrap-script`: its exact text as golden files in
// BootstrapGolden/ (`CFI_RECORD=1` rewrites them), sh and shellcheck accept it, and the files
// it writes without a .deb are byte for byte those `cfi-sh client enroll` writes (run on a
// copy whose paths point into a temporary directory).

import Foundation
import Testing

@testable import Runtime
import TestSupport

@Suite struct ClientBootstrapTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("BootstrapGolden").path
  static let key = try! ServerKey.parse(Keys.a + " cfi-server@srv")
  static let fingerprint = KeyFingerprint(Keys.aFingerprint)!

  static func bootstrap(group: String? = "lab", port: Int = 22, url: String? = nil, sha256: String? = nil) -> ClientBootstrap {
    ClientBootstrap(
      key: key, fingerprint: fingerprint, group: group.map { GroupName($0)! }, port: port, packageURL: url,
      packageSHA256: sha256, generator: "cfi-sh TEST")
  }

  static let cases: [(String, ClientBootstrap)] = [
    ("files", bootstrap()),
    ("files-no-group-port", bootstrap(group: nil, port: 2222)),
    (
      "deb-url",
      bootstrap(
        url: "http://10.0.0.1:8000/cfi-sh_0.1.0_amd64.deb",
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    ),
    ("deb-url-no-group-port", bootstrap(group: nil, port: 2222, url: "https://srv.example/pool/cfi-sh.deb?a=1&b='x'")),
  ]

  @Test(arguments: cases.map(\.0)) func matchesItsGoldenFile(_ name: String) throws {
    let script = try #require(Self.cases.first { $0.0 == name }).1.script
    if let problem = GoldenFile.check(
      script, path: Self.directory + "/\(name).sh",
      rerecord: "CFI_RECORD=1 swift test --filter ClientBootstrapTests")
    {
      Issue.record(Comment(rawValue: problem))
    }
  }

  @Test func everyGoldenFileHasACase() throws {
    #expect(Set(try FileManager.default.contentsOfDirectory(atPath: Self.directory)) == Set(Self.cases.map { $0.0 + ".sh" }))
  }

  /// `sh -n` (dash, Debian's sh) parses each; shellcheck, when installed (`scripts/lab deps`
  /// installs it), finds nothing in it as a POSIX sh script.
  @Test(arguments: cases.map(\.0)) func shellsAcceptIt(_ name: String) throws {
    let script = try #require(Self.cases.first { $0.0 == name }).1.script
    let dash = try run("/bin/sh", ["-n"], stdin: script)
    #expect(dash.status == 0, "\(dash.stderr)")
    let shellcheck = "/usr/bin/shellcheck"
    if FileManager.default.isExecutableFile(atPath: shellcheck) {
      let check = try run(shellcheck, ["-s", "sh", "-"], stdin: script)
      #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    } else {
      #expect(ProcessInfo.processInfo.environment["CI"] != "true", "shellcheck is missing: run scripts/lab deps")
    }
  }

  @Test func aSHA256IsSixtyFourHexDigits() throws {
    #expect(try ClientBootstrap.checkPackageSHA256(String(repeating: "aB", count: 32)) == String(repeating: "ab", count: 32))
    for bad in ["", String(repeating: "a", count: 63), String(repeating: "g", count: 64), String(repeating: "a", count: 63) + "'"] {
      #expect(throws: EnrollmentError.self) { try ClientBootstrap.checkPackageSHA256(bad) }
    }
  }

  @Test func onlyHTTPURLsOfPrintableCharactersAreTaken() {
    #expect(throws: Never.self) { try ClientBootstrap.checkPackageURL("https://srv:8443/p/cfi-sh_1_amd64.deb") }
    for bad in ["ftp://srv/x.deb", "/srv/x.deb", "http://", "http://srv/a b.deb", "http://srv/\u{1B}.deb", "http://sr\u{e9}v/x.deb"] {
      #expect(throws: EnrollmentError.self, "\(bad)") { try ClientBootstrap.checkPackageURL(bad) }
    }
  }

  @Test func theEnrollmentOptionsNameGroupPortAndFingerprint() {
    #expect(Self.bootstrap().enrollOptions == ["--group", "lab", "--server-fingerprint", Keys.aFingerprint])
    #expect(Self.bootstrap(group: nil, port: 2222).enrollOptions == ["--port", "2222", "--server-fingerprint", Keys.aFingerprint])
  }

  // MARK: what it writes

  /// Existing authorized_keys texts: none, other keys only, an older cfi line with options
  /// among others (replaced in place), two cfi lines (one kept), no final newline.
  static let existingKeys: [String?] = [
    nil,
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther admin@laptop\n",
    "# keys\nssh-rsa AAAAB3 one\nfrom=\"10.0.0.0/8\" \(Keys.b) cfi-sh-server:\(Keys.bFingerprint)\nssh-rsa AAAAB3 two\n",
    "\(Keys.b) cfi-sh-server:\(Keys.bFingerprint)\nx y z\n\(Keys.b) cfi-sh-server:\(Keys.bFingerprint)\n",
    "ssh-rsa AAAAB3 last-without-newline",
  ]

  @Test(.enabled(if: geteuid() == 0, "the script runs as root"), arguments: existingKeys.indices)
  func itWritesWhatEnrollmentWrites(_ index: Int) throws {
    let root = try TemporaryDirectory()
    let bootstrap = Self.bootstrap()
    let paths = (services: root.path + "/services", keys: root.path + "/root/.ssh/authorized_keys", pin: root.path + "/cfi/server.pin")
    if let existing = Self.existingKeys[index] { _ = try root.write("root/.ssh/authorized_keys", existing, mode: 0o600) }
    let before = try AtomicFile.read(paths.keys) ?? []

    // The script, pointed at the temporary directory, and with no avahi-daemon running.
    let script = bootstrap.script
      .replacingOccurrences(of: AvahiServiceFile.defaultDirectory, with: paths.services)
      .replacingOccurrences(of: AuthorizedKeys.defaultPath, with: paths.keys)
      .replacingOccurrences(of: ServerPin.defaultPath, with: paths.pin)
      .replacingOccurrences(of: "avahi-daemon --check", with: "false")
    for _ in 1...2 {
      let result = try run("/bin/sh", ["-s"], stdin: script)
      #expect(result.status == 0, "\(result.stderr)")
    }

    // What enrollment writes in the same places.
    let service = AvahiServiceFile.client(group: bootstrap.group, port: bootstrap.port)
    #expect(try String(contentsOfFile: paths.services + "/" + service.fileName, encoding: .utf8) == service.text)
    #expect(try String(contentsOfFile: paths.pin, encoding: .utf8) == ServerPin.text(Self.fingerprint))
    let line = AuthorizedKeys.line(for: Self.key, fingerprint: Self.fingerprint)
    let expected = AuthorizedKeys.edit(before, installing: line).text
    #expect(String(decoding: try AtomicFile.read(paths.keys) ?? [], as: UTF8.self) == String(decoding: expected, as: UTF8.self))
    #expect(try FileManager.default.attributesOfItem(atPath: paths.keys)[.posixPermissions] as? Int == 0o600)
    if Self.existingKeys[index] == nil {
      #expect(try FileManager.default.attributesOfItem(atPath: root.path + "/root/.ssh")[.posixPermissions] as? Int == 0o700)
    }
  }

  @Test(.enabled(if: geteuid() == 0, "the script runs as root"))
  func aSecondRunChangesNothing() throws {
    let root = try TemporaryDirectory()
    let script = Self.bootstrap().script.replacingOccurrences(of: "/etc/", with: root.path + "/etc/")
      .replacingOccurrences(of: "/root/", with: root.path + "/root/").replacingOccurrences(of: "avahi-daemon --check", with: "false")
    let first = try run("/bin/sh", ["-s"], stdin: script)
    #expect(first.stderr.components(separatedBy: ": wrote ").count == 4, "\(first.stderr)")
    let second = try run("/bin/sh", ["-s"], stdin: script)
    #expect(second.status == 0)
    #expect(!second.stderr.contains("wrote"), "\(second.stderr)")
  }

  /// An edit of authorized_keys that fails midway (awk writes part of it, then exits 2)
  /// fails the script and leaves the file as it was: the admin's other keys stay.
  @Test(.enabled(if: geteuid() == 0, "the script runs as root"))
  func aFailedEditOfAuthorizedKeysInstallsNothing() throws {
    let root = try TemporaryDirectory()
    let existing = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther admin@laptop\nssh-rsa AAAAB3 two\n"
    let keys = try root.write("root/.ssh/authorized_keys", existing, mode: 0o600)
    let script = Self.bootstrap().script.replacingOccurrences(of: "/etc/", with: root.path + "/etc/")
      .replacingOccurrences(of: "/root/", with: root.path + "/root/").replacingOccurrences(of: "avahi-daemon --check", with: "false")
      .replacingOccurrences(of: "set -eu\n", with: "set -eu\nawk() { echo half; return 2; }\n")
    let result = try run("/bin/sh", ["-s"], stdin: script)
    #expect(result.status == 1)
    #expect(result.stderr.contains("cfi bootstrap: error: cannot edit \(keys)"), "\(result.stderr)")
    #expect(try String(contentsOfFile: keys, encoding: .utf8) == existing)
    #expect(try FileManager.default.contentsOfDirectory(atPath: root.path + "/root/.ssh") == ["authorized_keys"])
  }

  private func run(_ program: String, _ arguments: [String], stdin: String) throws -> Command {
    try Command.run(arguments, stdin: stdin, executable: URL(fileURLWithPath: program), isolated: false)
  }
}
