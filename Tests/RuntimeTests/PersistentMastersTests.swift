// Masters that outlive a run: where they live, how their sockets are named (golden: a
// change of name strands every master open at the upgrade, so it must be deliberate), what
// a listing finds and removes, and the argv of a master that persists.

import Foundation
import TestSupport
import Testing

@testable import Runtime

@Suite struct PersistentMastersTests {
  static let key = MasterKey(
    name: "pc01", address: "192.0.2.11", port: nil, user: "root", identity: "/etc/cfi/id_ed25519 2049:131:411:1700000000.0",
    knownHosts: "/var/lib/cfi/.ssh/known_hosts", config: nil, serverAlive: "5x3")

  @Test func socketNamesGolden() {
    var changed: [(String, MasterKey)] = [("as is", Self.key)]
    func with(_ what: String, _ change: (inout MasterKey) -> Void) {
      var key = Self.key
      change(&key)
      changed.append((what, key))
    }
    with("another port") { $0.port = 2222 }
    with("another user") { $0.user = "admin" }
    with("another address") { $0.address = "192.0.2.12" }
    with("another identity (the same path, the key replaced)") { $0.identity = "/etc/cfi/id_ed25519 2049:132:411:1700000100.0" }
    with("another known_hosts") { $0.knownHosts = "/srv/cfi/.ssh/known_hosts" }
    with("an ssh_config") { $0.config = "/etc/cfi/ssh_config 2049:140:20:1700000000.0" }
    let text = changed.map { "\($0.0): \($0.1.socketName)\n" }.joined() + "\ncanonical:\n\(Self.key.canonical)\n"
    let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/Persist/socket-names.golden")
    if let problem = GoldenFile.check(
      text, path: golden.path, rerecord: "CFI_RECORD=1 swift test --skip-build --filter PersistentMastersTests")
    {
      Issue.record("\(problem)")
    }
    // Every parameter that differs gives another socket: a master is never reused across them.
    #expect(Set(changed.map(\.1.socketName)).count == changed.count)
    #expect(changed.allSatisfy { PersistentMasters.isSocketName($0.1.socketName) })
  }

  @Test func theirPlaceIsTheUsersOwnRuntimeDirectoryNeverASharedOne() {
    #expect(PersistentMasters.forUser(environment: [:], uid: 0)?.directory == "/run/cfi/persist")
    #expect(PersistentMasters.forUser(environment: ["XDG_RUNTIME_DIR": "/run/user/1000"], uid: 1000)?.directory == "/run/user/1000/cfi/persist")
    #expect(PersistentMasters.forUser(environment: ["CFI_RUNTIME_DIR": "/tmp/t/run"], uid: 1000)?.directory == "/tmp/t/run/persist")
    // Only /tmp left: masters do not persist there.
    #expect(PersistentMasters.forUser(environment: [:], uid: 1000) == nil)
  }

  @Test func theDirectoryIsOwnerOnly() throws {
    let temporary = try TemporaryDirectory()
    let masters = PersistentMasters(directory: temporary.path + "/run/persist")
    #expect(masters.prepare())
    var status = stat()
    #expect(lstat(masters.directory, &status) == 0 && status.st_mode & 0o777 == 0o700)
    // Opened up by someone: refused, not used.
    chmod(masters.directory, 0o755)
    #expect(!masters.prepare())
  }

  /// The sweep of killed runs' directories (named by their pid) leaves them alone.
  @Test func theSweepOfKilledRunsLeavesThemAlone() throws {
    let temporary = try TemporaryDirectory()
    let masters = PersistentMasters(directory: temporary.path + "/persist")
    #expect(masters.prepare())
    masters.write(
      PersistentMaster.Record(host: "pc01", user: "root", port: nil, address: "192.0.2.11", window: 300, opened: Date(), pin: ""),
      of: masters.socket(for: Self.key))
    try FileManager.default.createDirectory(atPath: temporary.path + "/ssh-1-abcdef", withIntermediateDirectories: false)
    let removed = ControlDirectory(base: temporary.path, prefix: "ssh-").removeStale(uid: getuid(), except: getpid(), alive: { _ in false })
    #expect(removed == [temporary.path + "/ssh-1-abcdef"])
    #expect(FileManager.default.fileExists(atPath: PersistentMasters.recordPath(masters.socket(for: Self.key))))
  }

  @Test func aListingShowsLiveMastersAndRemovesWhatDeadOnesLeft() throws {
    let temporary = try TemporaryDirectory()
    let masters = PersistentMasters(directory: temporary.path + "/persist")
    #expect(masters.prepare())
    let record = PersistentMaster.Record(
      host: "pc01", user: "root", port: nil, address: "192.0.2.11", window: 300, opened: Date(timeIntervalSince1970: 1_700_000_000),
      pin: "")
    let live = masters.socket(for: Self.key)
    var other = Self.key
    other.name = "pc02"
    let dead = masters.socket(for: other)
    masters.write(record, of: live)
    masters.write(record, of: dead)
    // pc02's socket is a file nobody listens on; pc03 left only its record.
    #expect(FileManager.default.createFile(atPath: dead, contents: nil))
    var third = Self.key
    third.name = "pc03"
    masters.write(record, of: masters.socket(for: third))
    let server = try FakeMaster(path: live, behaviour: .answersAlive(pid: 4242))
    let listed = masters.list()
    server.wait()
    #expect(listed.map(\.record.host) == ["pc01"])
    #expect(listed.first?.pid == 4242)
    #expect(listed.first?.closes == listed.first.map { $0.lastUsed.addingTimeInterval(300) })
    let left = try FileManager.default.contentsOfDirectory(atPath: masters.directory).sorted()
    #expect(left == [Self.key.socketName, Self.key.socketName + ".json"].sorted())
  }

  /// A master is opened under a name of its own, then linked into its place, which it never
  /// takes from another live master: two runs opening one at once leave one, not a stray
  /// connection nothing ends.
  @Test func aMasterTakesItsPlaceOnlyIfNoLiveOneHasIt() throws {
    let temporary = try TemporaryDirectory()
    let masters = PersistentMasters(directory: temporary.path + "/persist")
    #expect(masters.prepare())
    let socket = masters.socket(for: Self.key)
    func opened() -> String {
      let opening = masters.opening(for: socket)
      #expect(opening.hasPrefix(socket + ".") && opening.utf8.count == socket.utf8.count + 7)
      #expect(FileManager.default.createFile(atPath: opening, contents: nil))
      return opening
    }
    // Free: ours.
    let first = opened()
    #expect(masters.install(first, as: socket) == (socket, true))
    #expect(!FileManager.default.fileExists(atPath: first))
    // Held by a live master: theirs, and ours is gone.
    unlink(socket)
    let server = try FakeMaster(path: socket, behaviour: .answersAlive(pid: 4242))
    let second = opened()
    #expect(masters.install(second, as: socket) == (socket, false))
    server.wait()
    #expect(!FileManager.default.fileExists(atPath: second))
    // Held by a dead one (nobody answers): replaced.
    unlink(socket)
    #expect(FileManager.default.createFile(atPath: socket, contents: nil))
    #expect(masters.install(opened(), as: socket) == (socket, true))
    #expect(try FileManager.default.contentsOfDirectory(atPath: masters.directory) == [Self.key.socketName])
  }

  /// A master is reused only while alive, pinned as now and younger than the maximum age;
  /// one whose record is incomplete, or that does not answer in time, is left alone.
  @Test func whenAMasterIsReused() {
    let opened = Date(timeIntervalSince1970: 1_700_000_000)
    let record = PersistentMaster.Record(host: "pc01", user: "root", port: nil, address: "192.0.2.11", window: 300, opened: opened, pin: "p")
    var firstContact = record
    firstContact.pin = nil
    let soon = opened.addingTimeInterval(600)
    let alive = MuxControl.Probe.alive(4242)
    func reuse(_ probe: MuxControl.Probe, _ record: PersistentMaster.Record?, pin: String = "p", at now: Date = soon) -> PersistentMaster.Reuse {
      PersistentMaster.reuse(probe, record: record, pin: pin, now: now)
    }
    #expect(reuse(alive, record) == .reuse)
    #expect(reuse(alive, record, at: opened.addingTimeInterval(PersistentMaster.maximumAge - 1)) == .reuse)
    // Too old, however recently used; opened in the future (a clock set back): too.
    #expect(reuse(alive, record, at: opened.addingTimeInterval(PersistentMaster.maximumAge)) == .retire)
    #expect(reuse(alive, record, at: opened.addingTimeInterval(-60)) == .retire)
    #expect(PersistentMaster.maximumAge == 3600)
    // Another pin (the host forgotten, its key changed).
    #expect(reuse(alive, record, pin: "q") == .retire)
    #expect(reuse(alive, record, pin: "") == .retire)
    // Alive but not this run's to judge: a first contact not yet recorded, a record not yet written.
    #expect(reuse(alive, firstContact) == .ownConnection)
    #expect(reuse(alive, nil) == .ownConnection)
    // Busy (no answer in time): left alone too.
    #expect(reuse(.silent, record) == .ownConnection)
    // Nobody there: a new one in its place.
    #expect(reuse(.gone, record) == .open)
    #expect(reuse(.gone, nil) == .open)
  }

  /// `connections list` removes only a socket nobody listens on, never a busy master's.
  @Test func aListingLeavesABusyMasterAlone() throws {
    let temporary = try TemporaryDirectory()
    let masters = PersistentMasters(directory: temporary.path + "/persist")
    #expect(masters.prepare())
    let socket = masters.socket(for: Self.key)
    masters.write(
      PersistentMaster.Record(host: "pc01", user: "root", port: nil, address: "192.0.2.11", window: 300, opened: Date(), pin: ""),
      of: socket)
    let server = try FakeMaster(path: socket, behaviour: .silent)
    #expect(masters.list().isEmpty)
    server.wait()
    #expect(FileManager.default.fileExists(atPath: socket) && FileManager.default.fileExists(atPath: PersistentMasters.recordPath(socket)))
  }

  @Test func aMasterThatPersistsEndsWhenIdleForItsWindow() throws {
    let transport = SSHTransport(configuration: SSHConfiguration(store: Store(root: "/var/lib/cfi")))
    let target = SSHTarget(name: HostName("pc01"), address: HostAddress("192.0.2.11"))
    let argv = transport.masterArgv(target, socket: "/run/cfi/persist/x", connectTimeout: .seconds(5), persist: .seconds(300))
    #expect(argv.contains("ControlPersist=300") && argv.contains("ControlPath=/run/cfi/persist/x"))
    let alone = transport.masterArgv(target, socket: "/run/cfi/ssh-1-abcdef/pc01", connectTimeout: .seconds(5))
    #expect(alone.contains("ControlPersist=120"))
  }
}
