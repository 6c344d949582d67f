// Enrollment, the client side: the server's ed25519 key as announced over mDNS (validated before
// anything is written), its SHA256 fingerprint, the pin of the trusted fingerprint, root's
// authorized_keys with one marked line, and the client's own avahi service file.
//
// authorized_keys marker: the cfi line is `[options ]ssh-ed25519 BASE64 cfi-sh-server:SHA256:…`,
// i.e. the key's comment field, a single word, names it. A line is cfi's when it is not a `#`
// comment and its last whitespace-separated field starts with `cfi-sh-server:`. Being one line,
// the marker cannot get separated from the key it marks (a `# marker` line above the key could).
// Options an administrator puts in front of that line (`from="…"`) are kept when it is rewritten.
//
// Pin: `/etc/cfi/server.pin`, `#` comment lines and one line `SHA256:…`.

import Foundation

/// A failure of enrollment's files or tools, with a message for the operator.
public struct EnrollmentError: Error, Hashable, Sendable, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

// MARK: - Keys and fingerprints

/// A SHA256 fingerprint as OpenSSH prints it: `SHA256:` and 43 characters of unpadded base64.
public struct KeyFingerprint: Hashable, Sendable, CustomStringConvertible {
  public let description: String

  /// Nil unless `text` has exactly that shape (no padding, no white space).
  public init?(_ text: String) {
    let prefix = "SHA256:"
    guard text.hasPrefix(prefix) else { return nil }
    let body = text.utf8.dropFirst(prefix.utf8.count)
    guard body.count == 43, body.allSatisfy(Base64.isAlphabet) else { return nil }
    description = text
  }

  /// What a `--server-fingerprint` must look like, for messages.
  public static let expectedForm = "SHA256: and 43 base64 characters, as 'ssh-keygen -l -E sha256 -f KEY.pub' prints it"
}

/// An ssh-ed25519 public key, as in an authorized_keys or `.pub` line (without options).
public struct ServerKey: Hashable, Sendable {
  /// The key's base64 blob, canonical (re-encoding the decoded bytes gives the same text).
  public let base64: String
  /// The line's comment (may be empty); informational only, never written anywhere.
  public let comment: String

  /// The key type; the only one accepted (an RSA key does not fit a TXT string).
  public static let type = "ssh-ed25519"
  /// The longest line accepted: what one mDNS TXT string can hold.
  public static let maximumLength = 255

  /// `ssh-ed25519 BASE64`, without the comment.
  public var line: String { "\(ServerKey.type) \(base64)" }

  /// Parses and validates one public key line `ssh-ed25519 AAAA… [comment]`: one line of
  /// printable text, the type ssh-ed25519, and key data that decodes to an ssh-ed25519 blob (the
  /// type string, then a 32-byte key, nothing more).
  public static func parse(_ text: String) throws(EnrollmentError) -> ServerKey {
    if text.utf8.count > maximumLength {
      throw EnrollmentError("too long (\(text.utf8.count) bytes; an ed25519 key line has about 100, and a TXT string at most \(maximumLength))")
    }
    if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\t" }) {
      throw EnrollmentError("contains control characters (a key is one line of text)")
    }
    let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
    guard let first = fields.first else { throw EnrollmentError("is empty") }
    guard first == type else {
      if first.hasPrefix("ssh-") || first.hasPrefix("ecdsa-") || first.hasPrefix("sk-") {
        throw EnrollmentError("is a \(displayable(first)) key, not \(type) (only ed25519 keys are accepted)")
      }
      throw EnrollmentError("does not start with '\(type)' (it starts with '\(displayable(first))')")
    }
    guard fields.count >= 2 else { throw EnrollmentError("has no key data after '\(type)'") }
    let encoded = String(fields[1])
    guard encoded.utf8.allSatisfy({ Base64.isAlphabet($0) || $0 == UInt8(ascii: "=") }),
      let blob = Data(base64Encoded: encoded), blob.base64EncodedString() == encoded
    else { throw EnrollmentError("has key data that is not valid base64") }
    try checkBlob(Array(blob))
    return ServerKey(base64: encoded, comment: fields.dropFirst(2).joined(separator: " "))
  }

  /// The wire format of an ed25519 public key (RFC 8709): string "ssh-ed25519", string key(32).
  private static func checkBlob(_ blob: [UInt8]) throws(EnrollmentError) {
    var rest = blob[...]
    func string() -> ArraySlice<UInt8>? {
      guard rest.count >= 4 else { return nil }
      let length = rest.prefix(4).reduce(0) { $0 << 8 | Int($1) }
      rest = rest.dropFirst(4)
      guard rest.count >= length else { return nil }
      defer { rest = rest.dropFirst(length) }
      return rest.prefix(length)
    }
    guard let name = string() else { throw EnrollmentError("has key data that is not an ssh public key") }
    let blobType = String(decoding: name, as: UTF8.self)
    guard blobType == type else {
      throw EnrollmentError("has key data of a '\(displayable(blobType))' key, not \(type)")
    }
    guard let key = string() else { throw EnrollmentError("has truncated key data") }
    guard key.count == 32 else { throw EnrollmentError("has a \(key.count)-byte key, not the 32 bytes of an ed25519 key") }
    guard rest.isEmpty else { throw EnrollmentError("has \(rest.count) stray bytes after the key") }
  }

  /// The key's SHA256 fingerprint, computed by `ssh-keygen -l -E sha256 -f -` (OpenSSH's own
  /// definition: unpadded base64 of SHA-256 over the blob).
  public func fingerprint(sshKeygen: String = ServerKey.sshKeygen) throws(EnrollmentError) -> KeyFingerprint {
    let result: (status: Int32, stdout: String, stderr: String)
    do {
      result = try runProgram(sshKeygen, ["-l", "-E", "sha256", "-f", "-"], stdin: line + "\n")
    } catch {
      throw EnrollmentError("cannot run \(sshKeygen): \(error)")
    }
    // "256 SHA256:… no comment (ED25519)"
    let fields = result.stdout.split(whereSeparator: \.isWhitespace)
    guard result.status == 0, fields.count >= 2, fields.last == "(ED25519)",
      let fingerprint = KeyFingerprint(String(fields[1]))
    else {
      let why = (result.stderr + result.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
      throw EnrollmentError("ssh-keygen cannot fingerprint the key: \(displayable(why, limit: 200))")
    }
    return fingerprint
  }

  /// Where ssh-keygen is (OpenSSH's client package puts it in /usr/bin).
  public static let sshKeygen: String = findProgram("ssh-keygen") ?? "/usr/bin/ssh-keygen"
}

/// Text from the network, safe to print: control characters escaped, shortened to `limit`.
public func displayable(_ text: some StringProtocol, limit: Int = 80) -> String {
  var out = ""
  for scalar in text.unicodeScalars {
    if out.unicodeScalars.count >= limit {
      out += "…"
      break
    }
    if scalar.properties.generalCategory == .control || scalar == "\u{FFFD}" {
      out += scalar == "\u{FFFD}" ? "\\uFFFD" : String(format: "\\x%02X", scalar.value)
    } else {
      out.unicodeScalars.append(scalar)
    }
  }
  return out
}

enum Base64 {
  static func isAlphabet(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
      || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
  }
}

// MARK: - Announcements and the trust decision

/// A `_cfi-server._tcp` announcement whose key and fingerprint check out.
public struct ServerAnnouncement: Hashable, Sendable {
  /// The service instance name and the announcing address, for messages.
  public var name: String
  public var address: String
  public var key: ServerKey
  public var fingerprint: KeyFingerprint

  public init(name: String, address: String, key: ServerKey, fingerprint: KeyFingerprint) {
    self.name = name
    self.address = address
    self.key = key
    self.fingerprint = fingerprint
  }

  /// `NAME (ADDRESS)`, printable.
  public var origin: String { "'\(displayable(name))' (\(displayable(address)))" }

  /// Validates an announcement's TXT record: `key` a valid ed25519 key line, `fp` its real
  /// fingerprint. The error says what is wrong, without the service's name.
  public static func validate(
    name: String, address: String, txt: [String: String],
    fingerprinter: (ServerKey) throws(EnrollmentError) -> KeyFingerprint = { key throws(EnrollmentError) in try key.fingerprint() }
  ) throws(EnrollmentError) -> ServerAnnouncement {
    guard let keyText = txt["key"] else { throw EnrollmentError("its TXT record has no 'key'") }
    let key: ServerKey
    do { key = try ServerKey.parse(keyText) } catch {
      throw EnrollmentError("its key is not a valid ed25519 public key line: it \(error.description)")
    }
    guard let fpText = txt["fp"] else { throw EnrollmentError("its TXT record has no 'fp' (the key's fingerprint)") }
    guard let announced = KeyFingerprint(fpText) else {
      throw EnrollmentError("its fp '\(displayable(fpText))' is not a SHA256 fingerprint")
    }
    let actual = try fingerprinter(key)
    guard actual == announced else {
      throw EnrollmentError("its fp \(announced) is not its key's fingerprint (\(actual))")
    }
    return ServerAnnouncement(name: name, address: address, key: key, fingerprint: actual)
  }
}

/// An announcement refused by `ServerAnnouncement.validate`.
public struct RejectedAnnouncement: Hashable, Sendable {
  public var name: String
  public var address: String
  public var reason: String
  public init(name: String, address: String, reason: String) {
    self.name = name
    self.address = address
    self.reason = reason
  }
  public var description: String { "'\(displayable(name))' (\(displayable(address))): \(reason)" }
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

  /// Decides whom to trust.
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
        let seen = valid.map { "\($0.origin) announces \($0.fingerprint)" } + rejected.map { "\($0.description)" }
        return .refuse(
          "no announced server key has the fingerprint \(expected) given with --server-fingerprint: "
            + seen.joined(separator: "; "))
      }
      chosen = match
      ignored = valid.filter { $0.fingerprint != expected }.map { "\($0.origin), which announces another key, \($0.fingerprint)" }
        + rejected.map { "\($0.description)" }
    } else {
      if !rejected.isEmpty {
        return .refuse(
          "invalid server announcement: " + rejected.map(\.description).joined(separator: "; ")
            + " (remove it, or pick the right server with --server-fingerprint)")
      }
      let keys = Set(valid.map(\.fingerprint))
      if keys.count > 1 {
        let list = valid.map { announcement in
          "\(announcement.origin) announces \(announcement.fingerprint)" + (announcement.fingerprint == pinned ? " (the pinned key)" : "")
        }
        return .refuse(
          "servers announce different keys: " + list.joined(separator: "; ")
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

  /// Writes the pin (atomically; its directory is created, mode 0755).
  public static func save(_ fingerprint: KeyFingerprint, to path: String) throws(EnrollmentError) {
    let text = """
      # The cfi server key this client trusts ('cfi-sh client enroll' pinned it).
      # A different key is refused until 'cfi-sh client enroll --reset'.
      \(fingerprint)

      """
    try AtomicFile.createDirectory((path as NSString).deletingLastPathComponent, mode: 0o755)
    try AtomicFile.write(Array(text.utf8), to: path, newFileMode: 0o644)
  }

  /// Removes the pin; whether there was one.
  public static func remove(_ path: String) throws(EnrollmentError) -> Bool {
    try AtomicFile.remove(path)
  }
}

// MARK: - authorized_keys

/// The one cfi line in root's authorized_keys.
public enum AuthorizedKeys {
  public static let defaultPath = "/root/.ssh/authorized_keys"
  /// The comment field of the cfi line starts with this; the fingerprint follows.
  public static let marker = "cfi-sh-server:"

  /// The line installed for `key`: `ssh-ed25519 BASE64 cfi-sh-server:SHA256:…`.
  public static func line(for key: ServerKey, fingerprint: KeyFingerprint) -> String {
    "\(key.line) \(marker)\(fingerprint)"
  }

  /// What a change did.
  public enum Change: Hashable, Sendable {
    case unchanged, added, replaced, removed
  }

  /// The fields of a line split on blanks (a trailing CR counts as a blank).
  private static func fields(_ line: Substring) -> [Substring] {
    line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
  }

  /// Whether a line is the cfi line: not a comment, and its last field starts with the marker.
  public static func isMarked(_ line: Substring) -> Bool {
    let fields = fields(line)
    guard let first = fields.first, !first.hasPrefix("#"), let last = fields.last else { return false }
    return fields.count >= 3 && last.hasPrefix(marker)
  }

  /// The cfi lines of a file's text.
  public static func markedLines(in text: String) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: false).filter(isMarked).map(String.init)
  }

  /// The key of a cfi line, if it is a valid one.
  public static func key(ofMarked line: String) -> ServerKey? {
    let fields = fields(line[...])
    guard fields.count >= 3, isMarked(line[...]) else { return nil }
    return try? ServerKey.parse(fields[(fields.count - 3)...].prefix(2).joined(separator: " "))
  }

  /// `text` with `line` as its one cfi line (nil: with none), and what changed. Other lines
  /// are kept byte for byte; a cfi line that already is `line` (after any options) is kept as
  /// it is; the first cfi line is replaced in place, keeping its options, and further cfi lines
  /// are dropped; without one, `line` is appended.
  public static func edit(_ text: [UInt8], installing line: String?) -> (text: [UInt8], change: Change) {
    // Each line with whether a "\n" ended it (only the last one of a file may lack it).
    var pieces = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
    let lastTerminated = text.isEmpty || text.last == UInt8(ascii: "\n")
    if lastTerminated { pieces.removeLast() }  // the empty piece after the last "\n"
    var lines = pieces.enumerated().map { ($1, $0 < pieces.count - 1 || lastTerminated) }
    func decoded(_ bytes: [UInt8]) -> Substring { String(decoding: bytes, as: UTF8.self)[...] }
    let marked = lines.indices.filter { isMarked(decoded(lines[$0].0)) }
    var change = Change.unchanged
    if let line {
      if let first = marked.first {
        // Options in front of the key (the fields before the last three) are kept.
        let existing = decoded(lines[first].0)
        let keyStart = fields(existing).suffix(3).first!.startIndex
        let wanted = Array((String(existing[..<keyStart]) + line).utf8)
        if lines[first].0 != wanted {
          lines[first] = (wanted, true)
          change = .replaced
        }
        for index in marked.dropFirst().reversed() {
          lines.remove(at: index)
          change = .replaced
        }
      } else {
        lines.append((Array(line.utf8), true))
        change = .added
      }
    } else {
      for index in marked.reversed() { lines.remove(at: index) }
      if !marked.isEmpty { change = .removed }
    }
    guard change != .unchanged else { return (text, .unchanged) }
    var out: [UInt8] = []
    for (index, (bytes, terminated)) in lines.enumerated() {
      out += bytes
      if terminated || index < lines.count - 1 { out.append(UInt8(ascii: "\n")) }
    }
    return (out, change)
  }

  /// Installs `key` as the cfi line of the file at `path` (creating its directory with mode
  /// 0700 and the file with 0600 when missing; an existing file keeps its mode and owner).
  public static func install(_ key: ServerKey, fingerprint: KeyFingerprint, at path: String) throws(EnrollmentError) -> Change {
    try AtomicFile.createDirectory((path as NSString).deletingLastPathComponent, mode: 0o700)
    let current = try AtomicFile.read(path) ?? []
    let (text, change) = edit(current, installing: line(for: key, fingerprint: fingerprint))
    if change != .unchanged { try AtomicFile.write(text, to: path, newFileMode: 0o600) }
    return change
  }

  /// Removes the cfi line from the file at `path`, if any.
  public static func remove(at path: String) throws(EnrollmentError) -> Change {
    guard let current = try AtomicFile.read(path) else { return .unchanged }
    let (text, change) = edit(current, installing: nil)
    if change != .unchanged { try AtomicFile.write(text, to: path, newFileMode: 0o600) }
    return change
  }
}

// MARK: - The client's avahi service file

/// `_cfi._tcp` as this client announces it: an avahi service file.
public enum ClientAnnouncement {
  public static let defaultDirectory = "/etc/avahi/services"
  public static let fileName = "cfi.service"
  public static let serviceType = "_cfi._tcp"

  /// Group names a client may announce: 1–63 letters, digits, `-`, `_`.
  public static func isValidGroup(_ name: String) -> Bool {
    (1...63).contains(name.utf8.count)
      && name.utf8.allSatisfy { byte in
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
          || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
      }
  }

  /// The service file for `group` (nil: no group TXT) and `port`.
  public static func serviceFile(group: String?, port: Int) -> String {
    let txt = group.map { "\n    <txt-record>group=\($0)</txt-record>" } ?? ""
    return """
      <?xml version="1.0" standalone='no'?>
      <!DOCTYPE service-group SYSTEM "avahi-service.dtd">
      <!-- Written by 'cfi-sh client enroll': this machine as a cfi client. 'cfi-sh client leave' removes it. -->
      <service-group>
        <name replace-wildcards="yes">%h</name>
        <service protocol="ipv4">
          <type>\(serviceType)</type>
          <port>\(port)</port>\(txt)
        </service>
      </service-group>

      """
  }

  /// The type, port and group of a `_cfi._tcp` service file (ours or one like it); nil when
  /// it announces no `_cfi._tcp`.
  public static func parse(serviceFile text: String) -> (port: Int?, group: String?)? {
    func element(_ name: String) -> String? {
      guard let open = text.range(of: "<\(name)>"),
        let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex)
      else { return nil }
      return String(text[open.upperBound..<close.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    guard element("type") == serviceType else { return nil }
    var group: String?
    var rest = text[...]
    while let open = rest.range(of: "<txt-record"), let start = rest.range(of: ">", range: open.upperBound..<rest.endIndex),
      let close = rest.range(of: "</txt-record>", range: start.upperBound..<rest.endIndex)
    {
      let value = rest[start.upperBound..<close.lowerBound]
      if value.hasPrefix("group="), group == nil { group = String(value.dropFirst(6)) }
      rest = rest[close.upperBound...]
    }
    return (element("port").flatMap { Int($0) }, group)
  }

  /// Writes the service file if it differs from what is there; whether it changed.
  public static func publish(group: String?, port: Int, directory: String) throws(EnrollmentError) -> Bool {
    let path = directory + "/" + fileName
    let wanted = Array(serviceFile(group: group, port: port).utf8)
    if try AtomicFile.read(path) == wanted { return false }
    try AtomicFile.createDirectory(directory, mode: 0o755)
    try AtomicFile.write(wanted, to: path, newFileMode: 0o644)
    return true
  }
}

// MARK: - Files

/// Reading and replacing small files safely: a new version is written to a temporary file in
/// the same directory, synced, and renamed over the old one (readers see the old or the new
/// file, never half of one; a crash leaves at worst a stray temporary file).
public enum AtomicFile {
  /// The file's bytes; nil when it does not exist.
  public static func read(_ path: String) throws(EnrollmentError) -> [UInt8]? {
    var info = stat()
    if stat(path, &info) != 0 {
      if errno == ENOENT { return nil }
      throw EnrollmentError("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw EnrollmentError("cannot read \(path)")
    }
    return Array(data)
  }

  /// Creates `path` and missing parents with `mode` (an existing directory is left as it is).
  public static func createDirectory(_ path: String, mode: Int) throws(EnrollmentError) {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
      if isDirectory.boolValue { return }
      throw EnrollmentError("\(path) is not a directory")
    }
    do {
      try FileManager.default.createDirectory(
        atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
    } catch {
      throw EnrollmentError("cannot create \(path): \(error.localizedDescription)")
    }
  }

  /// Replaces the file at `path` (through a symbolic link: its target) with `bytes`. An
  /// existing file keeps its mode and owner; a new one gets `newFileMode` and the caller's owner.
  public static func write(_ bytes: [UInt8], to path: String, newFileMode: mode_t) throws(EnrollmentError) {
    var target = path
    var info = stat()
    if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
      guard let resolved = realpath(path, nil) else {
        throw EnrollmentError("\(path) is a symbolic link to nowhere: \(String(cString: strerror(errno)))")
      }
      target = String(cString: resolved)
      free(resolved)
    }
    let exists = stat(target, &info) == 0
    if exists, (info.st_mode & S_IFMT) != S_IFREG { throw EnrollmentError("\(target) is not a regular file") }
    let directory = (target as NSString).deletingLastPathComponent
    let name = (target as NSString).lastPathComponent
    var template = Array("\(directory.isEmpty ? "." : directory)/.\(name).cfi-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    guard fd >= 0 else { throw EnrollmentError("cannot write in \(directory): \(String(cString: strerror(errno)))") }
    let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    func fail(_ what: String) -> EnrollmentError {
      let error = EnrollmentError("cannot write \(target) (\(what)): \(String(cString: strerror(errno)))")
      close(fd)
      unlink(temporary)
      return error
    }
    var written = 0
    while written < bytes.count {
      let count = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw fail("write")
      }
      written += count
    }
    guard fchmod(fd, exists ? info.st_mode & 0o7777 : newFileMode) == 0 else { throw fail("chmod") }
    if exists, info.st_uid != geteuid() || info.st_gid != getegid() {
      guard fchown(fd, info.st_uid, info.st_gid) == 0 else { throw fail("chown") }
    }
    guard fsync(fd) == 0 else { throw fail("fsync") }
    guard close(fd) == 0 else {
      unlink(temporary)
      throw EnrollmentError("cannot write \(target) (close): \(String(cString: strerror(errno)))")
    }
    guard rename(temporary, target) == 0 else {
      let error = EnrollmentError("cannot replace \(target): \(String(cString: strerror(errno)))")
      unlink(temporary)
      throw error
    }
    let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY)
    if directoryFD >= 0 {
      _ = fsync(directoryFD)
      close(directoryFD)
    }
  }

  /// Removes a file; whether it existed.
  public static func remove(_ path: String) throws(EnrollmentError) -> Bool {
    if unlink(path) == 0 { return true }
    if errno == ENOENT { return false }
    throw EnrollmentError("cannot remove \(path): \(String(cString: strerror(errno)))")
  }
}

// MARK: - Programs

/// The absolute path of `name` in PATH, or in /usr/sbin and /sbin (often missing from PATH).
public func findProgram(_ name: String) -> String? {
  let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
  for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
    let candidate = directory + "/" + name
    if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
  }
  return nil
}

/// Runs a program to its end, with `stdin` as its input; its status and output.
public func runProgram(_ path: String, _ arguments: [String], stdin: String? = nil) throws -> (
  status: Int32, stdout: String, stderr: String
) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: path)
  process.arguments = arguments
  let output = Pipe()
  let errors = Pipe()
  let input = Pipe()
  process.standardOutput = output
  process.standardError = errors
  process.standardInput = stdin == nil ? FileHandle.nullDevice : input
  try process.run()
  if let stdin {
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try? input.fileHandleForWriting.close()
  }
  // Small outputs: read stderr on another thread so neither pipe can fill up and block.
  let errorData = ErrorCollector(errors.fileHandleForReading)
  let outputData = output.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (
    process.terminationStatus, String(decoding: outputData, as: UTF8.self),
    String(decoding: errorData.wait(), as: UTF8.self)
  )
}

/// Reads a pipe to its end on a thread of its own.
private final class ErrorCollector: @unchecked Sendable {
  private let done = DispatchSemaphore(value: 0)
  private var data = Data()  // written by the reader thread before `done` is signalled
  init(_ handle: FileHandle) {
    Thread.detachNewThread { [self] in
      data = handle.readDataToEndOfFile()
      done.signal()
    }
  }
  func wait() -> Data {
    done.wait()
    return data
  }
}
