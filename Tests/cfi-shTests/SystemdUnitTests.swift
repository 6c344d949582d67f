// The systemd units of packaging/systemd: systemd's own checker accepts each (no warning
// either, and the man pages they name exist), the hardening the watcher is meant to run under
// is there, and the command line each one starts is one cfi-sh accepts.

import ArgumentParser
import Foundation
import TestSupport
import Testing

@testable import cfi_sh

@Suite struct SystemdUnitTests {
  static let directory = Command.packageRoot.appendingPathComponent("packaging/systemd").path
  static let units = ["cfi-sh-watch.service", "cfi-sh-enroll.service", "cfi-sh-runbook@.service", "cfi-sh-runbook@.timer"]
  /// systemd-analyze: CI installs it (`scripts/lab deps`); elsewhere the checks that need it
  /// are skipped.
  static let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first {
    FileManager.default.isExecutableFile(atPath: $0)
  }
  static var analyzeOrCI: Bool { analyze != nil || ProcessInfo.processInfo.environment["CI"] == "true" }

  /// The text of a unit.
  static func text(_ unit: String) throws -> String {
    try String(contentsOfFile: directory + "/" + unit, encoding: .utf8)
  }

  /// `key=value` lines of a unit (comments and section headers left out).
  static func settings(_ unit: String) throws -> [(key: String, value: String)] {
    try text(unit).split(separator: "\n").compactMap { line in
      guard !line.hasPrefix("#"), !line.hasPrefix("["), let equals = line.firstIndex(of: "=") else { return nil }
      return (String(line[..<equals]), String(line[line.index(after: equals)...]))
    }
  }

  static func values(_ key: String, in unit: String) throws -> [String] {
    try settings(unit).filter { $0.key == key }.map(\.value)
  }

  @Test func theUnitsAreThere() {
    let found = (try? FileManager.default.contentsOfDirectory(atPath: Self.directory)) ?? []
    #expect(Set(found) == Set(Self.units))
  }

  /// The units as installed, with their /usr/bin/cfi-sh replaced by the built binary (systemd's
  /// checker wants the program to exist), in a directory of their own.
  private func installedCopies() throws -> TemporaryDirectory {
    let copies = try TemporaryDirectory()
    for unit in Self.units {
      try copies.write(unit, try Self.text(unit).replacingOccurrences(of: "/usr/bin/cfi-sh", with: Command.binary.path))
    }
    return copies
  }

  @Test(.enabled(if: analyzeOrCI, "no systemd-analyze (scripts/lab deps installs it)"))
  func systemdAcceptsEachUnitWithoutAWord() throws {
    let analyze = try #require(Self.analyze, "systemd-analyze is missing: run scripts/lab deps")
    let copies = try installedCopies()
    // The man pages Documentation= names, as `make man` writes them (the package installs them).
    let pages = try ManualPageTests.pages.get().path
    for unit in Self.units {
      let result = try Command.run(
        ["verify", "--man=yes", copies.path + "/" + unit], executable: URL(fileURLWithPath: analyze),
        environment: ["MANPATH": pages], isolated: false)
      #expect(result.status == 0 && result.stderr.isEmpty && result.stdout.isEmpty, "\(unit): \(result.stderr)\(result.stdout)")
    }
  }

  /// systemd's own rating of the services' exposure (0 safest, 10 unprotected): they run as
  /// root with ssh and rsync, so "OK" (below 3.5) is the bar, and a lost directive fails it.
  @Test(.enabled(if: analyzeOrCI, "no systemd-analyze (scripts/lab deps installs it)"))
  func theServicesAreRatedOK() throws {
    let analyze = try #require(Self.analyze, "systemd-analyze is missing: run scripts/lab deps")
    let copies = try installedCopies()
    for unit in Self.units where unit.hasSuffix(".service") {
      let result = try Command.run(
        ["security", "--offline=yes", "--man=no", "--threshold=35", "--no-pager", copies.path + "/" + unit],
        executable: URL(fileURLWithPath: analyze), isolated: false)
      let verdict = result.stdout.split(separator: "\n").last { $0.contains("Overall exposure level") } ?? "none"
      #expect(result.status == 0, "\(unit): \(verdict) \(result.stderr)")
    }
  }

  @Test func theWatcherIsHardenedAndCanWriteWhatItWrites() throws {
    for unit in ["cfi-sh-watch.service", "cfi-sh-runbook@.service"] {
      let settings = Dictionary(try Self.settings(unit).map { ($0.key, $0.value) }) { first, _ in first }
      for (key, value) in [
        ("ProtectSystem", "strict"), ("ProtectHome", "read-only"), ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"),
        // The store, the audit log's directory, ssh's control sockets (kept for runs by hand).
        ("StateDirectory", "cfi"), ("LogsDirectory", "cfi"), ("RuntimeDirectory", "cfi"), ("RuntimeDirectoryPreserve", "yes"),
      ] {
        #expect(settings[key] == value, "\(unit): \(key)=\(settings[key] ?? "(none)"), not \(value)")
      }
      // ssh and rsync reach hosts over IP, avahi over D-Bus.
      let families = Set((settings["RestrictAddressFamilies"] ?? "").split(separator: " "))
      #expect(families.isSuperset(of: ["AF_UNIX", "AF_INET", "AF_INET6"]), "\(unit)")
    }
    let enroll = try Self.settings("cfi-sh-enroll.service")
    #expect(enroll.contains { $0 == ("ProtectSystem", "strict") })
    #expect(enroll.contains { $0 == ("NoNewPrivileges", "yes") })
    // What enroll writes: the announcement, root's authorized_keys, the pin in /etc/cfi.
    #expect(try Self.values("ReadWritePaths", in: "cfi-sh-enroll.service") == ["-/etc/avahi/services /root"])
    #expect(try Self.values("ConfigurationDirectory", in: "cfi-sh-enroll.service") == ["cfi"])
    // avahi-daemon -r signals the daemon, which runs as another user.
    #expect(try Self.values("CapabilityBoundingSet", in: "cfi-sh-enroll.service").first?.contains("CAP_KILL") == true)
  }

  /// `systemctl stop` sends SIGTERM, after which watch exits 143: a stop, not a failure.
  @Test func stoppingTheWatcherIsNoFailure() throws {
    #expect(try Self.values("SuccessExitStatus", in: "cfi-sh-watch.service") == ["143"])
    #expect(try Self.values("RestartPreventExitStatus", in: "cfi-sh-watch.service") == ["64"])
  }

  /// A stop signals cfi-sh alone (KillMode=mixed): it needs ssh's masters to kill the remote
  /// commands, which systemd's default (the whole control group at once) would end with it.
  @Test func stoppingSignalsCfiShBeforeItsSshMasters() throws {
    for unit in ["cfi-sh-watch.service", "cfi-sh-runbook@.service"] {
      #expect(try Self.values("KillMode", in: unit) == ["mixed"], "\(unit)")
      #expect(try Self.values("TimeoutStopSec", in: unit) == ["90s"], "\(unit)")
    }
  }

  /// Enrollment retries while no server answers (status 3), not when it refused (1) or the
  /// options are wrong (64); and boot never waits for it.
  @Test func enrollmentRetriesUntilAServerAnswers() throws {
    let unit = "cfi-sh-enroll.service"
    #expect(try Self.values("Type", in: unit) == ["exec"])
    #expect(try Self.values("Restart", in: unit) == ["on-failure"])
    #expect(try Self.values("RestartPreventExitStatus", in: unit) == ["1 64"])
    #expect(try Self.values("StartLimitIntervalSec", in: unit) == ["0"])
  }

  /// Each unit starts a command line cfi-sh parses (its options from /etc/default/cfi-sh left
  /// out), so a renamed option cannot leave a unit that fails at boot.
  @Test func eachUnitStartsACommandCfiShAccepts() throws {
    for unit in Self.units where unit.hasSuffix(".service") {
      let line = try #require(try Self.values("ExecStart", in: unit).first)
      var words = line.split(separator: " ").map(String.init).filter { !$0.hasPrefix("$") }
      #expect(words.removeFirst() == "/usr/bin/cfi-sh", "\(unit)")
      words = words.map { $0.replacingOccurrences(of: "%i", with: "nightly") }
      if words.first?.hasPrefix("/") == true {
        #expect(words == ["/etc/cfi/runbooks/nightly.cfi"], "\(unit)")
        _ = try CFISh.parse(words)
      } else {
        #expect(throws: Never.self, "\(unit): \(words)") { _ = try Tools.parseAsRoot(words) }
      }
    }
  }

  /// Nothing is enabled by installing the units: each says where it goes only when enabled.
  @Test func enablingIsTheAdminsChoice() throws {
    #expect(try Self.values("WantedBy", in: "cfi-sh-watch.service") == ["multi-user.target"])
    #expect(try Self.values("WantedBy", in: "cfi-sh-enroll.service") == ["multi-user.target"])
    #expect(try Self.values("WantedBy", in: "cfi-sh-runbook@.timer") == ["timers.target"])
    #expect(try Self.values("WantedBy", in: "cfi-sh-runbook@.service").isEmpty, "started by its timer")
    for unit in Self.units {
      #expect(!(try Self.text(unit)).contains("Alias="), "\(unit)")
    }
  }
}
