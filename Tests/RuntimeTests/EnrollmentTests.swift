// Enrollment's pure parts: the server key line, its fingerprint, the trust decision, and
// editing root's authorized_keys (on temporary files).

import Foundation
import Testing

@testable import Runtime
import TestSupport

/// Fixed test keys (generated once with ssh-keygen -t ed25519) and their fingerprints (shared
/// with the other enrollment test files).
enum Keys {
  static let a = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHU3V9lSQ8gDEyrA5eOyMu4j8cvJAuFXYpJ60O8MBG/A"
  static let aFingerprint = "SHA256:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY"
  static let b = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHo/1BMwNKtBcb68G6IaPel6MuzcXZddA5+ehoQo0mSU"
  static let bFingerprint = "SHA256:ow5QCKQkPZTj69g6wegXZaYq0tkz3KxrRVWJ73Lhngg"
  static let rsa =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDG3GyWVsRkwxqfNjN+TU/G7YsHDEeYeggf+qA1po7g8lq9AygjwtXt9L2ttwxndyC/syLqLOVakWSM3gFsBfzeC0WVJQh7G/GwXkBz/hxDE2+6wQgreRCbiDU0OvRqIZXDG+fs+wwHcU2dqs8yg7Hn7rIGqbCYA6j/m7Rw2eYBXQ== rsa@x"
  /// An ed25519-typed line whose blob is an RSA key's.
  static let rsaBlobAsEd25519 = "ssh-ed25519 " + rsa.split(separator: " ")[1]
  /// A blob: string "ssh-ed25519", then a 31-byte key.
  static let shortKey = "ssh-ed25519 " + blob(type: "ssh-ed25519", keyLength: 31)
  static let trailingBytes = "ssh-ed25519 " + blob(type: "ssh-ed25519", keyLength: 32, extra: 2)

  static func blob(type: String, keyLength: Int, extra: Int = 0) -> String {
    func string(_ bytes: [UInt8]) -> [UInt8] {
      withUnsafeBytes(of: UInt32(bytes.count).bigEndian, Array.init) + bytes
    }
    let bytes = string(Array(type.utf8)) + string([UInt8](repeating: 7, count: keyLength)) + [UInt8](repeating: 0, count: extra)
    return Data(bytes).base64EncodedString()
  }
}

/// All of enrollment's unit tests (`swift test --filter EnrollmentTests`).
@Suite struct EnrollmentTests {}

extension EnrollmentTests {
  @Suite struct KeyLines {
    @Test func acceptsAnEd25519LineWithOrWithoutComment() throws {
      let plain = try ServerKey.parse(Keys.a)
      #expect(plain.line == Keys.a)
      #expect(plain.comment == "")
      let commented = try ServerKey.parse(Keys.a + " cfi-server@srv  with words ")
      #expect(commented.line == Keys.a)
      #expect(commented.comment == "cfi-server@srv with words")
    }

    static let refused: [(String, String)] = [
      (Keys.rsa, "is a ssh-rsa key, not ssh-ed25519"),
      ("ecdsa-sha2-nistp256 AAAAE2VjZHNh", "is a ecdsa-sha2-nistp256 key"),
      ("", "is empty"),
      ("ssh-ed25519", "has no key data"),
      ("ssh-ed25519 AAAA!!notbase64", "not valid base64"),
      ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHU3V9lSQ8gDEyrA5eOyMu4j8cvJAuFXYpJ60O8MBG/", "not valid base64"),
      ("ssh-ed25519 QUFBQQ==", "not an ssh public key"),
      (Keys.rsaBlobAsEd25519, "key data of a 'ssh-rsa' key"),
      (Keys.shortKey, "31-byte key"),
      (Keys.trailingBytes, "2 stray bytes"),
      (Keys.a + " comment\nssh-ed25519 " + Keys.b, "control characters"),
      (Keys.a + " " + String(repeating: "c", count: 200), "too long"),
      (#"command="/bin/sh" "# + Keys.a, "does not start with 'ssh-ed25519'"),
      ("junk", "does not start with 'ssh-ed25519' (it starts with 'junk')"),
    ]

    @Test(arguments: refused)
    func refusesWhatIsNotAnEd25519Line(_ line: String, _ message: String) {
      #expect {
        try ServerKey.parse(line)
      } throws: { error in
        (error as? EnrollmentError)?.description.contains(message) == true
      }
    }

    @Test func fingerprintsLikeSSHKeygen() async throws {
      #expect(try await ServerKey.parse(Keys.a + " any comment").fingerprint().description == Keys.aFingerprint)
      #expect(try await ServerKey.parse(Keys.b).fingerprint().description == Keys.bFingerprint)
    }

    @Test func fingerprintsHaveOneShape() {
      #expect(KeyFingerprint(Keys.aFingerprint) != nil)
      for text in ["", "SHA256:", "sha256:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY", Keys.aFingerprint + "=",
        String(Keys.aFingerprint.dropLast()), "MD5:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY", Keys.aFingerprint + " "]
      {
        #expect(KeyFingerprint(text) == nil, "\(text)")
      }
    }

    @Test func announcementsMustCarryAValidKeyAndItsOwnFingerprint() async throws {
      let good = try await ServerAnnouncement.validate(
        Trust.service("cfi server on srv", "10.0.0.1", txt: ["key": Keys.a + " cfi-server@srv", "fp": Keys.aFingerprint]))
      #expect(good.fingerprint.description == Keys.aFingerprint)
      func reason(_ txt: [String: String]) async -> String {
        do {
          _ = try await ServerAnnouncement.validate(Trust.service("x", "10.0.0.9", txt: txt))
          return "accepted"
        } catch { return error.description }
      }
      #expect(await reason(["fp": Keys.aFingerprint]).contains("no 'key'"))
      #expect(await reason(["key": Keys.a]).contains("no 'fp'"))
      #expect(await reason(["key": "junk", "fp": Keys.aFingerprint]).contains("not a valid ed25519 public key line"))
      #expect(await reason(["key": Keys.a, "fp": "SHA256:nope"]).contains("is not a SHA256 fingerprint"))
      #expect(await reason(["key": Keys.b, "fp": Keys.aFingerprint]).contains("is not its key's fingerprint"))
      #expect(await reason(["key": Keys.a, "fp": "\u{1B}[2J"]).contains("\\x1B[2J"), "control characters are escaped")
    }

    @Test func serviceFileRoundTrips() {
      let text = AvahiServiceFile.client(group: GroupName("lab"), port: 2222).text
      #expect(text.contains("<type>_cfi._tcp</type>"))
      #expect(AvahiServiceFile.announcedClient(in: text)! == (2222, "lab"))
      #expect(AvahiServiceFile.announcedClient(in: AvahiServiceFile.client(group: nil, port: 22).text)! == (22, nil))
      #expect(AvahiServiceFile.announcedClient(in: "<type>_http._tcp</type>") == nil)
    }
}
}

extension EnrollmentTests {
  @Suite struct Trust {
    static func service(
      _ name: String, _ address: String, interface: String = "eth0", host: String = "srv.local", txt: [String: String] = [:]
    ) -> DiscoveredService {
      DiscoveredService(name: name, hostName: host, address: address, port: 22, txt: txt, interface: 2, interfaceName: interface)
    }
    static func announcement(_ service: DiscoveredService, _ key: String, _ fingerprint: String) -> ServerAnnouncement {
      ServerAnnouncement(service: service, key: try! ServerKey.parse(key), fingerprint: KeyFingerprint(fingerprint)!)
    }

    let a = announcement(service("cfi server on srv", "10.0.0.1"), Keys.a, Keys.aFingerprint)
    let b = announcement(service("forged", "10.0.0.66", host: "evil.local"), Keys.b, Keys.bFingerprint)
    let junk = RejectedAnnouncement(service: service("junk", "10.0.0.7", host: "x.local"), reason: "its TXT record has no 'key'")
    /// The server's own instance name, announced by another machine on another link.
    let twin = announcement(service("cfi server on srv", "10.0.9.2", interface: "eth1", host: "evil.local"), Keys.b, Keys.bFingerprint)

    func message(_ decision: TrustDecision) -> String? {
      if case .refuse(let message) = decision { return message }
      return nil
    }

    @Test func theFirstKeyIsPinnedAndThenKept() {
      #expect(TrustDecision.decide(valid: [a], rejected: [], expected: nil, pinned: nil, reset: false) == .trust(a, pin: .new, ignored: []))
      #expect(
        TrustDecision.decide(valid: [a], rejected: [], expected: nil, pinned: a.fingerprint, reset: false)
          == .trust(a, pin: .unchanged, ignored: []))
      // Two servers with the same key are one key.
      var copy = a
      copy.service.name = "cfi server on srv2"
      #expect(TrustDecision.decide(valid: [a, copy], rejected: [], expected: nil, pinned: nil, reset: false) == .trust(a, pin: .new, ignored: []))
    }

    @Test func aChangedKeyNeedsReset() {
      let refused = message(TrustDecision.decide(valid: [b], rejected: [], expected: nil, pinned: a.fingerprint, reset: false))
      #expect(refused?.contains("the server key changed") == true)
      #expect(refused?.contains("--reset") == true)
      #expect(
        TrustDecision.decide(valid: [b], rejected: [], expected: nil, pinned: a.fingerprint, reset: true)
          == .trust(b, pin: .replaced(old: a.fingerprint), ignored: []))
      // An explicit fingerprint does not replace a pin either.
      #expect(message(TrustDecision.decide(valid: [b], rejected: [], expected: b.fingerprint, pinned: a.fingerprint, reset: false)) != nil)
    }

    @Test func twoKeysOrJunkAreRefusedUnlessTheFingerprintPicksOne() {
      let two = message(TrustDecision.decide(valid: [a, b], rejected: [], expected: nil, pinned: a.fingerprint, reset: false))
      #expect(two?.contains("servers announce different keys") == true)
      #expect(two?.contains("'forged' (10.0.0.66 on eth0, host evil.local) announces \(Keys.bFingerprint)") == true)
      #expect(two?.contains("(the pinned key)") == true)
      let withJunk = message(TrustDecision.decide(valid: [a], rejected: [junk], expected: nil, pinned: nil, reset: false))
      #expect(withJunk?.contains("invalid server announcement: 'junk' (10.0.0.7 on eth0, host x.local): its TXT record has no 'key'") == true)
      let picked = TrustDecision.decide(valid: [a, b], rejected: [junk], expected: a.fingerprint, pinned: nil, reset: false)
      guard case .trust(let server, .new, let ignored) = picked else {
        Issue.record("\(picked)")
        return
      }
      #expect(server == a)
      #expect(ignored.count == 2)
    }

    @Test func aFingerprintNoOneAnnouncesIsRefused() {
      let refused = message(TrustDecision.decide(valid: [b], rejected: [junk], expected: a.fingerprint, pinned: nil, reset: false))
      #expect(refused?.contains("no announced server key has the fingerprint \(Keys.aFingerprint)") == true)
      #expect(refused?.contains("'forged' (10.0.0.66 on eth0, host evil.local) announces") == true)
    }

    // Several resolutions of one instance name (issue 10, defect 5): each counts.

    @Test func oneNameFromTwoLinksWithOneKeyIsOneServer() {
      var again = a
      again.service.interfaceName = "eth1"
      again.service.address = "10.0.9.1"
      #expect(
        TrustDecision.decide(valid: [a, again], rejected: [], expected: nil, pinned: nil, reset: false)
          == .trust(a, pin: .new, ignored: []))
      #expect(
        TrustDecision.decide(valid: [a, again, a], rejected: [], expected: nil, pinned: a.fingerprint, reset: false)
          == .trust(a, pin: .unchanged, ignored: []))
    }

    @Test func oneNameWithTwoKeysIsRefusedNamingEachAnnouncer() {
      for valid in [[a, twin], [twin, a], [a, twin, a]] {
        let refused = message(TrustDecision.decide(valid: valid, rejected: [], expected: nil, pinned: nil, reset: false))
        #expect(refused?.hasPrefix("servers announce different keys: ") == true)
        #expect(refused?.contains("'cfi server on srv' (10.0.0.1 on eth0, host srv.local) announces \(Keys.aFingerprint)") == true)
        #expect(refused?.contains("'cfi server on srv' (10.0.9.2 on eth1, host evil.local) announces \(Keys.bFingerprint)") == true)
        #expect(refused?.components(separatedBy: "announces").count == 3, "each announcer once: \(refused ?? "")")
      }
      // The twin is refused even when the real server's key is the pinned one, and alone it is a
      // changed key.
      #expect(message(TrustDecision.decide(valid: [a, twin], rejected: [], expected: nil, pinned: a.fingerprint, reset: false))?
        .contains("\(Keys.aFingerprint) (the pinned key)") == true)
      #expect(message(TrustDecision.decide(valid: [twin], rejected: [], expected: nil, pinned: a.fingerprint, reset: false))?
        .contains("the server key changed") == true)
    }

    @Test func theFingerprintPicksOneOfTwoAnnouncersOfOneName() {
      let picked = TrustDecision.decide(valid: [twin, a], rejected: [], expected: a.fingerprint, pinned: nil, reset: false)
      #expect(
        picked
          == .trust(a, pin: .new, ignored: [
            "'cfi server on srv' (10.0.9.2 on eth1, host evil.local), which announces another key, \(Keys.bFingerprint)"
          ]))
      let twinPicked = TrustDecision.decide(valid: [a, twin], rejected: [], expected: twin.fingerprint, pinned: nil, reset: false)
      guard case .trust(let server, .new, let ignored) = twinPicked else {
        Issue.record("\(twinPicked)")
        return
      }
      #expect(server == twin && ignored.count == 1)
    }
}
}

extension EnrollmentTests {
  @Suite struct AuthorizedKeysFile {
    let key = try! ServerKey.parse(Keys.a)
    let fingerprint = KeyFingerprint(Keys.aFingerprint)!
    let other = try! ServerKey.parse(Keys.b)
    let otherFingerprint = KeyFingerprint(Keys.bFingerprint)!
    var line: String { AuthorizedKeys.line(for: key, fingerprint: fingerprint) }

    func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    func mode(_ path: String) throws -> Int {
      try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func theMarkedLineIsTheKeyWithItsFingerprintAsComment() {
      #expect(line == "\(Keys.a) cfi-sh-server:\(Keys.aFingerprint)")
      #expect(AuthorizedKeys.isMarked(line[...]))
      #expect(AuthorizedKeys.isMarked(#"from="10.0.0.1" "# + line[...]))
      #expect(!AuthorizedKeys.isMarked("# " + line[...]))
      #expect(!AuthorizedKeys.isMarked(Keys.a + " cfi-sh-server:x is mine"))
      #expect(!AuthorizedKeys.isMarked("cfi-sh-server:x"))
      #expect(AuthorizedKeys.key(ofMarked: #"from="a b" "# + line) == key)
    }

    @Test func createsDirectoryAndFileWithPrivateModes() throws {
      let directory = try TemporaryFiles()
      let path = directory.path + "/.ssh/authorized_keys"
      #expect(try AuthorizedKeys.install(key, fingerprint: fingerprint, at: path) == .added)
      #expect(try text(path) == line + "\n")
      #expect(try mode(path) == 0o600)
      #expect(try mode(directory.path + "/.ssh") == 0o700)
    }

    @Test func insertsOnceKeepsOtherLinesAndMode() throws {
      let directory = try TemporaryFiles()
      let others = "# admin keys\n" + Keys.b + " admin@desk\n\n"
        + #"command="uptime",no-pty ssh-rsa AAAAB3 monitor"# + "\n"
      let path = try directory.write("authorized_keys", others, mode: 0o640)
      #expect(try AuthorizedKeys.install(key, fingerprint: fingerprint, at: path) == .added)
      #expect(try text(path) == others + line + "\n")
      #expect(try mode(path) == 0o640)
      // Idempotent: the same bytes, the same inode.
      let inode = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? NSNumber
      #expect(try AuthorizedKeys.install(key, fingerprint: fingerprint, at: path) == .unchanged)
      #expect(try text(path) == others + line + "\n")
      #expect(try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? NSNumber == inode)
      // No temporary files left behind.
      #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["authorized_keys"])
    }

    @Test func appendsAfterAnUnterminatedLastLine() throws {
      let directory = try TemporaryFiles()
      let path = try directory.write("authorized_keys", "ssh-ed25519 AAAA admin", mode: 0o600)
      #expect(try AuthorizedKeys.install(key, fingerprint: fingerprint, at: path) == .added)
      #expect(try text(path) == "ssh-ed25519 AAAA admin\n" + line + "\n")
    }

    @Test func replacesTheMarkedLineInPlaceKeepingOptionsAndDroppingDuplicates() throws {
      let directory = try TemporaryFiles()
      let old = AuthorizedKeys.line(for: other, fingerprint: otherFingerprint)
      let path = try directory.write(
        "authorized_keys", "first\n" + #"from="10.0.0.1" "# + old + "\nmiddle\n" + old + "\nlast", mode: 0o600)
      #expect(try AuthorizedKeys.install(key, fingerprint: fingerprint, at: path) == .replaced)
      #expect(try text(path) == "first\n" + #"from="10.0.0.1" "# + line + "\nmiddle\nlast")
      #expect(try AuthorizedKeys.install(key, fingerprint: fingerprint, at: path) == .unchanged)
    }

    @Test func removesOnlyTheMarkedLine() throws {
      let directory = try TemporaryFiles()
      let path = try directory.write("authorized_keys", "a\n" + line + "\nb\n", mode: 0o600)
      #expect(try AuthorizedKeys.remove(at: path) == .removed)
      #expect(try text(path) == "a\nb\n")
      #expect(try AuthorizedKeys.remove(at: path) == .unchanged)
      #expect(try AuthorizedKeys.remove(at: directory.path + "/missing") == .unchanged)
    }

    @Test func bytesThatAreNotUTF8AreKept() throws {
      var bytes = Array("ssh-ed25519 AAAA caf".utf8) + [0xE9, 0xFF] + Array("\n".utf8)
      let (edited, change) = AuthorizedKeys.edit(bytes, installing: line)
      #expect(change == .added)
      bytes += Array((line + "\n").utf8)
      #expect(edited == bytes)
    }

    @Test func editsThroughASymbolicLink() throws {
      let directory = try TemporaryFiles()
      let target = try directory.write("real_keys", "admin\n", mode: 0o600)
      let link = directory.path + "/authorized_keys"
      try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
      #expect(try AuthorizedKeys.install(key, fingerprint: fingerprint, at: link) == .added)
      #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
      #expect(try text(target) == "admin\n" + line + "\n")
    }

    @Test func pinRoundTripsAndRejectsJunk() throws {
      let directory = try TemporaryFiles()
      let path = directory.path + "/etc/cfi/server.pin"
      #expect(try ServerPin.load(path) == nil)
      try ServerPin.save(fingerprint, to: path)
      #expect(try ServerPin.load(path) == fingerprint)
      #expect(try mode(path) == 0o644)
      _ = try directory.write("junk.pin", "SHA256:short\n")
      #expect(throws: EnrollmentError.self) { try ServerPin.load(directory.path + "/junk.pin") }
      #expect(try ServerPin.remove(path))
      #expect(try !ServerPin.remove(path))
    }
}
}

/// A temporary directory removed at the end of the test.
final class TemporaryFiles {
  let path: String
  init() throws {
    path = NSTemporaryDirectory() + "cfi-enroll-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  func write(_ name: String, _ text: String, mode: Int = 0o644, createDirectories: Bool = false) throws -> String {
    let file = path + "/" + name
    if createDirectories {
      try FileManager.default.createDirectory(
        atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    }
    try Data(text.utf8).write(to: URL(fileURLWithPath: file))
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
    return file
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
}
