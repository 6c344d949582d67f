// Enrollment, keys and fingerprints: the server's ssh-ed25519 public key as announced over
// mDNS (parsed and validated before anything is written), and its SHA256 fingerprint as OpenSSH
// computes it. Also the error type of every enrollment piece, and how text from the network is
// made safe to print.
//
// The enrollment pieces (this folder): ServerKey (here), ServerTrust (announcements, the trust
// decision, the pin), AuthorizedKeys (root's authorized_keys), ServiceFiles (avahi service files
// of client and server), AtomicFile (every file they write), ClientEnrollment and ServerSetup
// (the transactions behind `cfi-sh client …` and `cfi-sh server init`, returning reports).
// None of them prints; the commands render the reports.

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
  public func fingerprint(sshKeygen: LocalProgram = .sshKeygen) async throws(EnrollmentError) -> KeyFingerprint {
    let result: ProgramResult
    do {
      result = try await sshKeygen.run(["-l", "-E", "sha256", "-f", "-"], input: line + "\n")
    } catch {
      throw EnrollmentError("cannot run \(sshKeygen): \(error)")
    }
    // "256 SHA256:… no comment (ED25519)"
    let fields = result.stdout.split(whereSeparator: \.isWhitespace)
    guard result.succeeded, fields.count >= 2, fields.last == "(ED25519)",
      let fingerprint = KeyFingerprint(String(fields[1]))
    else {
      throw EnrollmentError("ssh-keygen cannot fingerprint the key: \(displayable(result.message, limit: 200))")
    }
    return fingerprint
  }
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
