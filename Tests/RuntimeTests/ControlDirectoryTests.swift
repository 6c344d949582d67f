// Where control sockets live (/run/cfi, $XDG_RUNTIME_DIR/cfi, else TMPDIR) and the removal of
// the directories of runs that were killed.

import Foundation
import TestSupport
import Testing

@testable import Runtime

@Suite struct ControlDirectoryTests {
  @Test func rootUsesRunCfiOthersTheirRuntimeDirectoryAndTMPDIROnlyAfter() {
    let environment = ["XDG_RUNTIME_DIR": "/run/user/1000/", "TMPDIR": "/var/tmp"]
    #expect(
      ControlDirectory.candidates(environment: environment, uid: 0) == [
        ControlDirectory(base: "/run/cfi", prefix: "ssh-"), ControlDirectory(base: "/var/tmp", prefix: "cfi-ssh-"),
        ControlDirectory(base: "/tmp", prefix: "cfi-ssh-"),
      ])
    #expect(
      ControlDirectory.candidates(environment: environment, uid: 1000).first
        == ControlDirectory(base: "/run/user/1000/cfi", prefix: "ssh-"))
    #expect(
      ControlDirectory.candidates(environment: [:], uid: 1000) == [ControlDirectory(base: "/tmp", prefix: "cfi-ssh-")])
    // A relative runtime directory is nobody's.
    #expect(ControlDirectory.candidates(environment: ["XDG_RUNTIME_DIR": "run"], uid: 1000).first?.base == "/tmp")
  }

  @Test func cfiRuntimeDirNamesThePlace() {
    #expect(
      ControlDirectory.candidates(environment: ["CFI_RUNTIME_DIR": "/srv/cfi-run/", "XDG_RUNTIME_DIR": "/run/user/7"], uid: 7)
        == [ControlDirectory(base: "/srv/cfi-run", prefix: "ssh-")])
  }

  @Test func aPlaceTooLongForASocketPathIsPassedOver() {
    let long = "/" + String(repeating: "d", count: 50)
    let places = ControlDirectory.candidates(environment: ["XDG_RUNTIME_DIR": long, "TMPDIR": long], uid: 1000)
    #expect(places == [ControlDirectory(base: "/tmp", prefix: "cfi-ssh-")])
  }

  @Test func aRunsDirectoryIsPrivateAndNamedWithItsPid() throws {
    let scratch = try TemporaryDirectory()
    let place = ControlDirectory(base: scratch.path + "/run", prefix: "ssh-")
    let made = try #require(place.make())
    #expect(made.hasPrefix(scratch.path + "/run/ssh-\(getpid())-"))
    #expect(place.pid(of: (made as NSString).lastPathComponent) == getpid())
    for path in [scratch.path + "/run", made] {
      let attributes = try FileManager.default.attributesOfItem(atPath: path)
      #expect((attributes[.posixPermissions] as? Int) == 0o700, "\(path)")
    }
    #expect(ControlDirectory.remove(made))
    #expect(!FileManager.default.fileExists(atPath: made))
  }

  @Test func aBaseOthersMayWriteOrASymlinkIsNotUsed() throws {
    let scratch = try TemporaryDirectory()
    let open = scratch.path + "/open"
    try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: false)
    chmod(open, 0o777)
    #expect(ControlDirectory(base: open, prefix: "ssh-").make() == nil)
    try FileManager.default.createSymbolicLink(atPath: scratch.path + "/link", withDestinationPath: open)
    chmod(open, 0o700)
    #expect(ControlDirectory(base: scratch.path + "/link", prefix: "ssh-").make() == nil)
  }

  @Test func staleDirectoriesOfDeadRunsGoAndTheirMastersAreToldToExit() throws {
    let scratch = try TemporaryDirectory()
    let place = ControlDirectory(base: scratch.path, prefix: "ssh-")
    let dead = scratch.path + "/ssh-111-aaaaaa"
    let alive = scratch.path + "/ssh-222-bbbbbb"
    let ours = scratch.path + "/ssh-\(getpid())-cccccc"
    let other = scratch.path + "/not-ssh-333-dddddd"
    for directory in [dead, alive, ours, other] {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    }
    try scratch.write("ssh-444-eeeeee", "a file, not a run's directory")
    // A master still listening in the dead run's directory (short path: sun_path).
    let socket = "/tmp/cfi-stale-\(UUID().uuidString.prefix(8))"
    let master = try FakeMaster(path: socket, behaviour: .answersOK)
    defer { unlink(socket) }
    try FileManager.default.createSymbolicLink(atPath: dead + "/pc01", withDestinationPath: socket)

    let removed = place.removeStale(alive: { $0 == 222 })
    #expect(removed == [dead])
    master.wait()
    #expect(master.received == [[0x1, 4], [0x1000_0005, 0]], "the master was told to exit")
    for kept in [alive, ours, other, scratch.path + "/ssh-444-eeeeee"] {
      #expect(FileManager.default.fileExists(atPath: kept), "\(kept)")
    }
  }

  @Test func onlyNamesOfRunsCarryAPid() {
    let place = ControlDirectory(base: "/tmp", prefix: "cfi-ssh-")
    #expect(place.pid(of: "cfi-ssh-42-Ab3dEf") == 42)
    #expect(place.pid(of: "cfi-ssh-Ab3dEf") == nil)  // the names before pids were in them
    #expect(place.pid(of: "cfi-ssh-42-short") == nil)
    #expect(place.pid(of: "ssh-42-Ab3dEf") == nil)
  }
}
