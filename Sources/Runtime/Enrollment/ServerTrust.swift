// Enrollment, whom to trust: server announcements checked (key and fingerprint), the decision
// among them (first use, a pin, --server-fingerprint, --reset), and the pin itself,
// `/etc/cfi/server.pin`: `#` comment lines and one line `SHA256:…`.

import Foundation

/// A server announcement (`ServiceType.server`) whose key and fingerprint check out.
public struct ServerAnnouncement: Hashable, Sendable {
  /// The resolution it came in: who announced it, from where (for messages).
  public var service: DiscoveredService
  public var key: ServerKey
  public var fingerprint: KeyFingerprint

  public init(service: DiscoveredService, key: ServerKey, fingerprint: KeyFingerprint) {
    self.service = service
    self.key = key
    self.fingerprint = fingerprint
  }

  /// `'NAME' (ADDRESS on INTERFACE, host HOST)`, printable.
  public var origin: String { service.origin }

  /// Validates an announcement's TXT record: `key` a valid ed25519 key line, `fp` its real
  /// fingerprint. The error says what is wrong, without the service's name.
  public static func validate(
    _ service: DiscoveredService,
    fingerprinter: (ServerKey) async throws(EnrollmentError) -> KeyFingerprint = { key throws(EnrollmentError) in
      try await key.fingerprint()
    }
  ) async throws(EnrollmentError) -> ServerAnnouncement {
    let txt = service.txt
    guard let keyText = txt["key"] else { throw EnrollmentError("its TXT record has no 'key'") }
    let key: ServerKey
    do { key = try ServerKey.parse(keyText) } catch {
      throw EnrollmentError("its key is not a valid ed25519 public key line: it \(error.description)")
    }
    guard let fpText = txt["fp"] else { throw EnrollmentError("its TXT record has no 'fp' (the key's fingerprint)") }
    guard let announced = KeyFingerprint(fpText) else {
      throw EnrollmentError("its fp '\(displayable(fpText))' is not a SHA256 fingerprint")
    }
    let actual = try await fingerprinter(key)
    guard actual == announced else {
      throw EnrollmentError("its fp \(announced) is not its key's fingerprint (\(actual))")
    }
    return ServerAnnouncement(service: service, key: key, fingerprint: actual)
  }
}

/// An announcement refused by `ServerAnnouncement.validate`.
public struct RejectedAnnouncement: Hashable, Sendable {
  public var service: DiscoveredService
  public var reason: String
  public init(service: DiscoveredService, reason: String) {
    self.service = service
    self.reason = reason
  }
  public var description: String { "\(service.origin): \(reason)" }
}

/// What enrollment does with the announcements it found.
public enum TrustDecision: Hashable, Sendable {
  /// Install this server's key. `pin` says what happens to the pin; `ignored` lists the other
  /// announcements, ignored because `--server-fingerprint` picked this one.
  case trust(ServerAnnouncement, pin: PinChange, ignored: [String])
  /// Install nothing; the message says why and what to do.
  case refuse(String)

  public enum PinChange: Hashable, Sendable {
    /// The pin already names this key.
    case unchanged
    /// No pin yet: this key becomes it (trust on first use, or `--server-fingerprint`).
    case new
    /// `--reset`: this key replaces the pinned one.
    case replaced(old: KeyFingerprint)
  }

  /// Decides whom to trust, from every announcement seen (each resolution of each instance on
  /// each interface: a second announcer under the server's own name is one more here).
  /// - With `expected` (`--server-fingerprint`), only an announcement of that key is accepted;
  ///   the others, valid or not, are ignored.
  /// - Without it, every announcement must be valid and all must announce the same key
  ///   (several servers sharing a key are fine; two keys, or junk, are a refusal).
  /// - The pin is changed only with `reset`: a key other than the pinned one is refused, even
  ///   one named by `expected`.
  /// `valid` and `rejected` are never both empty (no server at all is the caller's case).
  public static func decide(
    valid: [ServerAnnouncement], rejected: [RejectedAnnouncement], expected: KeyFingerprint?,
    pinned: KeyFingerprint?, reset: Bool
  ) -> TrustDecision {
    let chosen: ServerAnnouncement
    var ignored: [String] = []
    if let expected {
      guard let match = valid.first(where: { $0.fingerprint == expected }) else {
        let seen = valid.map { "\($0.origin) announces \($0.fingerprint)" } + rejected.map(\.description)
        return .refuse(
          "no announced server key has the fingerprint \(expected) given with --server-fingerprint: "
            + seen.uniqued().joined(separator: "; "))
      }
      chosen = match
      ignored = (valid.filter { $0.fingerprint != expected }.map { "\($0.origin), which announces another key, \($0.fingerprint)" }
        + rejected.map(\.description)).uniqued()
    } else {
      if !rejected.isEmpty {
        return .refuse(
          "invalid server announcement: " + rejected.map(\.description).uniqued().joined(separator: "; ")
            + " (remove it, or pick the right server with --server-fingerprint)")
      }
      let keys = Set(valid.map(\.fingerprint))
      if keys.count > 1 {
        let list = valid.map { announcement in
          "\(announcement.origin) announces \(announcement.fingerprint)" + (announcement.fingerprint == pinned ? " (the pinned key)" : "")
        }
        return .refuse(
          "servers announce different keys: " + list.uniqued().joined(separator: "; ")
            + " (one of them is not your server: name the right key with --server-fingerprint)")
      }
      guard let first = valid.first else { return .refuse("no server announcement") }
      chosen = first
    }
    guard let pinned else { return .trust(chosen, pin: .new, ignored: ignored) }
    if pinned == chosen.fingerprint { return .trust(chosen, pin: .unchanged, ignored: ignored) }
    if reset { return .trust(chosen, pin: .replaced(old: pinned), ignored: ignored) }
    return .refuse(
      "the server key changed: \(chosen.origin) announces \(chosen.fingerprint), but \(pinned) is pinned"
        + (expected == nil ? "" : " (--server-fingerprint does not replace a pin)")
        + "; if the server's key was really replaced, run 'cfi-sh client enroll --reset'")
  }
}

extension [String] {
  /// The lines without repeats, in order: one announcer resolved twice alike is named once.
  fileprivate func uniqued() -> [String] {
    var seen: Set<String> = []
    return filter { seen.insert($0).inserted }
  }
}

// MARK: - The pin

/// The pinned server fingerprint: a file with `#` comment lines and one line `SHA256:…`.
public enum ServerPin {
  public static let defaultPath = "/etc/cfi/server.pin"

  /// The pinned fingerprint; nil when there is no pin file. Throws when it cannot be read or
  /// holds anything but one fingerprint.
  public static func load(_ path: String) throws(EnrollmentError) -> KeyFingerprint? {
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    guard let data = FileManager.default.contents(atPath: path) else { throw EnrollmentError("cannot read the pin \(path)") }
    let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
      .map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    guard lines.count == 1, let fingerprint = KeyFingerprint(lines[0]) else {
      throw EnrollmentError("the pin \(path) does not hold one SHA256 fingerprint; 'cfi-sh client enroll --reset' rewrites it")
    }
    return fingerprint
  }

  /// The pin file's text for `fingerprint` (what `save` writes; the bootstrap script too).
  public static func text(_ fingerprint: KeyFingerprint) -> String {
    """
    # The cfi server key this client trusts ('cfi-sh client enroll' pinned it).
    # A different key is refused until 'cfi-sh client enroll --reset'.
    \(fingerprint)

    """
  }

  /// Writes the pin (atomically; its directory is created, mode 0755, when missing).
  public static func save(_ fingerprint: KeyFingerprint, to path: String) throws(EnrollmentError) {
    _ = try AtomicFile.update(Array(text(fingerprint).utf8), at: path, directoryMode: 0o755, newFileMode: 0o644)
  }

  /// Removes the pin; whether there was one.
  public static func remove(_ path: String) throws(EnrollmentError) -> Bool {
    try AtomicFile.remove(path)
  }
}
