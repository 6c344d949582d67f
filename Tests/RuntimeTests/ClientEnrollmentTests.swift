// The enrollment transactions on temporary files, with announcements handed in instead of
// browsed (no lab, no avahi): what each reports and what it leaves on disk. Also the service
// files' exact text, as golden files in EnrollmentGolden/ (`CFI_RECORD=1` rewrites them).

import Foundation
import Testing

@testable import Runtime
import TestSupport

@Suite struct ClientEnrollmentTests {
  let directory: TemporaryFiles
  let files: ClientFiles

  init() throws {
    directory = try TemporaryFiles()
    files = ClientFiles(
      servicesDirectory: directory.path + "/avahi", authorizedKeys: directory.path + "/root/.ssh/authorized_keys",
      pinFile: directory.path + "/etc/cfi/server.pin")
  }

  static func announcement(
    _ name: String, key: String, fingerprint: String, address: String = "10.0.0.1", interface: Int32 = 2
  ) -> DiscoveredService {
    DiscoveredService(
      name: name, hostName: "srv.local", address: address, port: 22, txt: ["key": key + " cfi-server@srv", "fp": fingerprint],
      interface: interface)
  }
  static let serverA = announcement("cfi server on srv", key: Keys.a, fingerprint: Keys.aFingerprint)
  static let serverB = announcement("cfi server on srv", key: Keys.b, fingerprint: Keys.bFingerprint)
  /// The server's instance name with another key, resolved on another interface.
  static let twin = announcement("cfi server on srv", key: Keys.b, fingerprint: Keys.bFingerprint, address: "10.0.9.2", interface: 3)

  func enrollment(_ services: [DiscoveredService]) -> ClientEnrollment {
    ClientEnrollment(files: files) { _, end in
      #expect(end != .afterDuration, "enroll and status stop browsing once they have an answer")
      return services
    }
  }

  func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

  let lab = ClientEnrollment.Request(group: GroupName("lab"), wait: .seconds(1))

  @Test func firstEnrollmentPublishesPinsAndInstallsThenNothingChanges() async throws {
    var told: [ClientEnrollment.Publication] = []
    let first = await enrollment([Self.serverA]).enroll(lab) { told.append($0) }
    #expect(first.stop == nil)
    let publication = ClientEnrollment.Publication(
      group: GroupName("lab"), port: 22, file: files.serviceFile, reload: .notAvahisDirectory(files.servicesDirectory))
    #expect(first.publication == publication)
    #expect(told == [publication], "told before the search")
    #expect(first.server?.fingerprint.description == Keys.aFingerprint)
    #expect(first.pin == .new)
    #expect(first.key == .added)
    #expect(first.changes == ["published", "pinned", "key installed"])
    #expect(read(files.serviceFile) == AvahiServiceFile.client(group: GroupName("lab"), port: 22).text)
    #expect(read(files.pinFile)?.contains("\n\(Keys.aFingerprint)\n") == true)
    #expect(read(files.authorizedKeys) == "\(Keys.a) cfi-sh-server:\(Keys.aFingerprint)\n")

    let again = await enrollment([Self.serverA]).enroll(lab)
    #expect(again.stop == nil)
    #expect(again.publication?.reload == nil)
    #expect((again.pin, again.key) == (.unchanged, .unchanged))
    #expect(again.changes.isEmpty)
  }

  @Test func withoutAServerTheClientIsPublishedAndNothingElse() async throws {
    let report = await enrollment([]).enroll(lab)
    #expect(report.stop == .noServer)
    #expect(report.publication != nil)
    #expect(read(files.serviceFile) != nil)
    #expect(read(files.pinFile) == nil && read(files.authorizedKeys) == nil)

    let failing = ClientEnrollment(files: files) { _, _ in throw DiscoveryError(code: -1, description: "Daemon not running") }
    #expect(await failing.enroll(lab).stop == .searchFailed(EnrollmentError("avahi: Daemon not running")))
  }

  @Test func aChangedKeyIsRefusedUntilReset() async throws {
    _ = await enrollment([Self.serverA]).enroll(lab)
    let pin = read(files.pinFile)
    let keys = read(files.authorizedKeys)

    let refused = await enrollment([Self.serverB]).enroll(lab)
    guard case .refused(let message) = refused.stop else {
      Issue.record("\(String(describing: refused.stop))")
      return
    }
    #expect(message.contains("the server key changed"))
    #expect(refused.server == nil && refused.pin == nil && refused.key == nil)
    #expect(read(files.pinFile) == pin && read(files.authorizedKeys) == keys)

    var reset = lab
    reset.reset = true
    let replaced = await enrollment([Self.serverB]).enroll(reset)
    #expect(replaced.stop == nil)
    #expect(replaced.pin == .replaced(old: KeyFingerprint(Keys.aFingerprint)!))
    #expect(replaced.key == .replaced)
    #expect(replaced.changes == ["pinned", "key replaced"])
    #expect(read(files.authorizedKeys) == "\(Keys.b) cfi-sh-server:\(Keys.bFingerprint)\n")
  }

  @Test func aJunkPinIsRefusedUnlessReset() async throws {
    _ = try directory.write("etc/cfi/server.pin", "junk\n", createDirectories: true)
    let refused = await enrollment([Self.serverA]).enroll(lab)
    #expect(refused.stop.map { "\($0)" }?.contains("does not hold one SHA256 fingerprint") == true)
    var reset = lab
    reset.reset = true
    let report = await enrollment([Self.serverA]).enroll(reset)
    #expect(report.stop == nil)
    #expect(report.pin == .new)
  }

  @Test func junkBesideTheChosenServerIsIgnored() async throws {
    let junk = DiscoveredService(name: "junk", hostName: "x.local", address: "10.0.0.7", port: 22, txt: [:], interface: 2)
    var request = lab
    request.expected = KeyFingerprint(Keys.aFingerprint)
    let report = await enrollment([junk, Self.serverA]).enroll(request)
    #expect(report.stop == nil)
    #expect(report.ignored == ["'junk' (10.0.0.7 on interface 2, host x.local): its TXT record has no 'key'"])
    #expect(await enrollment([junk, Self.serverA]).enroll(lab).stop.map { "\($0)" }?.contains("invalid server announcement") == true)
  }

  @Test func aFileThatCannotBeWrittenStopsEnrollment() async throws {
    _ = try directory.write("avahi", "a file where the directory should be")
    let report = await enrollment([Self.serverA]).enroll(lab)
    #expect(report.publication == nil)
    guard case .cannotPublish = report.stop else {
      Issue.record("\(String(describing: report.stop))")
      return
    }
    _ = try FileManager.default.removeItem(atPath: files.servicesDirectory)
    _ = try directory.write("root", "a file where /root should be")
    let failed = await enrollment([Self.serverA]).enroll(lab)
    #expect(failed.pin == .new, "the pin is saved before the key")
    guard case .failed = failed.stop else {
      Issue.record("\(String(describing: failed.stop))")
      return
    }
  }

  @Test func statusReportsFilesAndAnnouncements() async throws {
    let before = await enrollment([Self.serverA]).status(wait: .seconds(1))
    #expect(before.published == .noFile)
    #expect(before.pin == .success(nil))
    #expect(before.installed.isEmpty)

    _ = await enrollment([Self.serverA]).enroll(lab)
    let junk = DiscoveredService(name: "junk", hostName: "x.local", address: "10.0.0.7", port: 22, txt: [:], interface: 2)
    let after = await enrollment([Self.serverA, Self.serverB, junk]).status(wait: .seconds(1))
    #expect(after.published == .yes(port: 22, group: "lab"))
    #expect(after.pinned == KeyFingerprint(Keys.aFingerprint))
    #expect(after.installed == [KeyFingerprint(Keys.aFingerprint)])
    let servers = try after.servers.get()
    #expect(servers.map { try? $0.announcement.get().fingerprint } == [
      KeyFingerprint(Keys.aFingerprint), KeyFingerprint(Keys.bFingerprint), nil,
    ])
    #expect(servers.last?.origin == "'junk' (10.0.0.7 on interface 2, host x.local)")
  }

  /// Every resolution the search found counts, also two of one instance name (issue 10, defect 5).
  @Test func twoAnnouncersOfOneNameAreRefusedUnlessTheFingerprintPicksOne() async throws {
    let refused = await enrollment([Self.serverA, Self.twin]).enroll(lab)
    guard case .refused(let message) = refused.stop else {
      Issue.record("\(String(describing: refused.stop))")
      return
    }
    #expect(message.contains("'cfi server on srv' (10.0.0.1 on interface 2, host srv.local) announces \(Keys.aFingerprint)"))
    #expect(message.contains("'cfi server on srv' (10.0.9.2 on interface 3, host srv.local) announces \(Keys.bFingerprint)"))
    #expect(read(files.pinFile) == nil && read(files.authorizedKeys) == nil)

    let status = await enrollment([Self.serverA, Self.twin]).status(wait: .seconds(1))
    #expect(try status.servers.get().map(\.origin) == [Self.serverA.origin, Self.twin.origin])

    var request = lab
    request.expected = KeyFingerprint(Keys.aFingerprint)
    let picked = await enrollment([Self.twin, Self.serverA]).enroll(request)
    #expect(picked.stop == nil)
    #expect(picked.server?.service == Self.serverA)
    #expect(picked.ignored == ["\(Self.twin.origin), which announces another key, \(Keys.bFingerprint)"])
    #expect(read(files.authorizedKeys) == "\(Keys.a) cfi-sh-server:\(Keys.aFingerprint)\n")
  }

  @Test func leaveRemovesOnlyWhatEnrollmentAdded() async throws {
    let others = "# admin\n\(Keys.b) admin@desk\n"
    _ = try directory.write("root/.ssh/authorized_keys", others, createDirectories: true)
    _ = await enrollment([Self.serverA]).enroll(lab)
    let left = await enrollment([]).leave()
    #expect(left.announcement == .success(true) && left.key == .success(true) && left.pin == .success(true))
    #expect(left.reload == .notAvahisDirectory(files.servicesDirectory))
    #expect(left.changed && !left.failed)
    #expect(read(files.authorizedKeys) == others)
    #expect(read(files.serviceFile) == nil && read(files.pinFile) == nil)

    let again = await enrollment([]).leave()
    #expect(!again.changed && !again.failed && again.reload == nil)
  }

  @Test func serverSetupMakesAKeyOnceAndAnnouncesIt() async throws {
    let setup = ServerSetup(keyFile: directory.path + "/keys/id_cfi", servicesDirectory: directory.path + "/avahi")
    let first = try await setup.run()
    #expect(first.created)
    let publicKey = try #require(read(first.publicKeyFile)).trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(first.fingerprint == (try await ServerKey.parse(publicKey).fingerprint()))
    let file = try #require(first.announcement?.file)
    #expect(read(file) == AvahiServiceFile.server(publicKey: publicKey, fingerprint: first.fingerprint).text)

    // What it announces is what a client accepts.
    let service = DiscoveredService(
      name: "cfi server on srv", hostName: "srv.local", address: "10.0.0.1", port: 22,
      txt: ["key": publicKey, "fp": first.fingerprint.description], interface: 2)
    let enrolled = await enrollment([service]).enroll(lab)
    #expect(enrolled.server?.fingerprint == first.fingerprint)

    let second = try await ServerSetup(keyFile: setup.keyFile, servicesDirectory: nil).run()
    #expect(!second.created && second.fingerprint == first.fingerprint && second.announcement == nil)
  }

  /// A key that was made is reported even when it cannot be announced.
  @Test func serverSetupReportsItsKeyWhenItCannotAnnounceIt() async throws {
    _ = try directory.write("avahi", "a file where the services directory should be")
    let report = try await ServerSetup(keyFile: directory.path + "/keys/id_cfi", servicesDirectory: directory.path + "/avahi").run()
    #expect(report.created && report.announcement == nil)
    #expect(report.announcementFailure != nil)
    #expect(FileManager.default.fileExists(atPath: report.publicKeyFile))
  }

  @Test func serverSetupRefusesAKeyClientsWouldRefuse() async throws {
    _ = try directory.write("keys/id_rsa", "private", createDirectories: true)
    _ = try directory.write("keys/id_rsa.pub", Keys.rsa + "\n")
    await #expect(throws: EnrollmentError.self) {
      try await ServerSetup(keyFile: directory.path + "/keys/id_rsa", servicesDirectory: directory.path + "/avahi").run()
    }
    #expect(read(directory.path + "/avahi/cfi-server.service") == nil)
  }
}

/// The service files' text, byte for byte, against EnrollmentGolden/NAME.service.
@Suite struct ServiceFileGoldenTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("EnrollmentGolden").path
  static let recording = ProcessInfo.processInfo.environment["CFI_RECORD"] == "1"

  static let cases: [(String, AvahiServiceFile)] = [
    ("client-group", .client(group: GroupName("lab"), port: 22)),
    ("client-no-group-port", .client(group: nil, port: 2222)),
    ("server", .server(publicKey: Keys.a + " cfi-server@srv", fingerprint: KeyFingerprint(Keys.aFingerprint)!)),
    ("server-escaped", .server(publicKey: Keys.a + " <admin&co>", fingerprint: KeyFingerprint(Keys.aFingerprint)!)),
  ]

  @Test(arguments: cases.map(\.0)) func matchesItsGoldenFile(_ name: String) throws {
    let actual = try #require(Self.cases.first { $0.0 == name }).1.text
    let path = Self.directory + "/" + name + ".service"
    if Self.recording {
      if (try? String(contentsOfFile: path, encoding: .utf8)) != actual {
        try actual.write(toFile: path, atomically: true, encoding: .utf8)
        Issue.record("recorded \(name).service; run again without CFI_RECORD")
      }
      return
    }
    let expected = try String(contentsOfFile: path, encoding: .utf8)
    #expect(actual == expected, "EnrollmentGolden/\(name).service; CFI_RECORD=1 rewrites it")
  }

  @Test func everyGoldenFileHasACase() throws {
    let names = Set(Self.cases.map { $0.0 + ".service" })
    #expect(Set(try FileManager.default.contentsOfDirectory(atPath: Self.directory)) == names)
  }

  @Test func aTXTStringAvahiWouldRefuseIsNotWritten() throws {
    let directory = try TemporaryFiles()
    let file = AvahiServiceFile.server(publicKey: Keys.a + " " + String(repeating: "c", count: 200), fingerprint: KeyFingerprint(Keys.aFingerprint)!)
    #expect(throws: EnrollmentError.self) { try file.publish(in: directory.path) }
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
  }
}
