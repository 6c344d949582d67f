// The server's own known_hosts (`SSHConfiguration.knownHostsFile`): ssh pins a host's key there
// at the first contact, under the host's name (`HostKeyAlias`), written plain or hashed
// (`|1|salt|HMAC-SHA1(salt, name)`, as Debian's `HashKnownHosts yes` does). Read here to
// record, with each known client, the key its name is pinned to, and to show its fingerprint.

import Crypto
import Foundation

/// One store's known_hosts file.
public struct KnownHostsFile: Sendable {
  public let path: String

  public init(path: String) { self.path = path }

  /// The file of `store` (`STORE/.ssh/known_hosts`).
  public init(store: Store) { self.init(path: SSHConfiguration(store: store).knownHostsFile) }

  /// The lines pinned for each of `names` (several joined with a newline); a name with no
  /// line is left out, and so is every name when the file cannot be read.
  public func pins(for names: some Sequence<HostName>) -> [HostName: String] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
    return Self.pins(in: text, for: names)
  }

  /// The lines of `text` that pin a key for each of `names` (`Index`).
  static func pins(in text: String, for names: some Sequence<HostName>) -> [HostName: String] {
    let wanted = Set(names)
    guard !wanted.isEmpty else { return [:] }
    let index = Index(text)
    return Dictionary(uniqueKeysWithValues: wanted.compactMap { name in index.pins(for: name).map { (name, $0) } })
  }

  /// A known_hosts text read once, for the pins of many names: a run asks for each of its
  /// hosts, and reading the whole file for each would cost hosts × lines. Comments,
  /// `@revoked` and `@cert-authority` lines pin nothing; a line's names are matched exactly
  /// (ssh writes the alias it was given, never a pattern).
  struct Index: Sendable {
    /// Plain lines by name, with their position in the file.
    private var plain: [HostName: [(position: Int, line: String)]] = [:]
    /// Hashed lines: a name is found only by hashing it with each line's salt.
    private var hashed: [(position: Int, salt: [UInt8], digest: [UInt8], line: String)] = []

    init(_ text: String) {
      for (position, line) in text.split(whereSeparator: \.isNewline).enumerated() {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 3, let first = fields.first, !first.hasPrefix("#"), !first.hasPrefix("@") else { continue }
        let pinned = String(line.drop(while: { $0 == " " || $0 == "\t" }))
        if first.hasPrefix("|1|") {
          if let (salt, digest) = KnownHostsFile.hashedField(first) { hashed.append((position, salt, digest, pinned)) }
        } else {
          for pattern in first.split(separator: ",") {
            if let name = HostName(String(pattern)) { plain[name, default: []].append((position, pinned)) }
          }
        }
      }
    }

    /// The lines pinning `name`, in the file's order, joined with a newline; nil for none.
    func pins(for name: HostName) -> String? {
      let bytes = Array(name.rawValue.utf8)
      let found = (plain[name] ?? []) + hashed.compactMap { entry -> (position: Int, line: String)? in
        let code = HMAC<Insecure.SHA1>.authenticationCode(for: bytes, using: SymmetricKey(data: entry.salt))
        return Array(code) == entry.digest ? (entry.position, entry.line) : nil
      }
      guard !found.isEmpty else { return nil }
      return found.sorted { $0.position < $1.position }.map(\.line).joined(separator: "\n")
    }
  }

  /// The salt and digest of a hashed host field `|1|BASE64|BASE64`.
  fileprivate static func hashedField(_ field: Substring) -> ([UInt8], [UInt8])? {
    let parts = field.dropFirst(3).split(separator: "|", omittingEmptySubsequences: false)
    guard parts.count == 2, let salt = Data(base64Encoded: String(parts[0])), let digest = Data(base64Encoded: String(parts[1]))
    else { return nil }
    return (Array(salt), Array(digest))
  }

  /// The SHA256 fingerprint of every key in `pins` (values as `pins(for:)` gives them), as
  /// ssh-keygen computes it, with the key's type: `ED25519 SHA256:…`. One ssh-keygen for all;
  /// nil when it cannot be run. A line ssh-keygen cannot read gets no fingerprint.
  public static func fingerprints(of pins: [HostName: String]) async -> [HostName: [String]]? {
    var keys: [(HostName, String)] = []
    for (name, lines) in pins {
      for line in lines.split(separator: "\n") {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if fields.count >= 3 { keys.append((name, "\(fields[1]) \(fields[2])")) }
      }
    }
    guard !keys.isEmpty else { return [:] }
    // Each key's position is its comment, which ssh-keygen prints back: a line it skips
    // shifts nothing.
    let input = keys.enumerated().map { "\($1.1) \($0)\n" }.joined()
    guard let result = try? await LocalProgram.sshKeygen.run(["-l", "-E", "sha256", "-f", "-"], input: input),
      result.succeeded
    else { return nil }
    var fingerprints: [HostName: [String]] = [:]
    for line in result.stdout.split(separator: "\n") {
      // `256 SHA256:… 7 (ED25519)`
      let fields = line.split(separator: " ")
      guard fields.count == 4, let position = Int(fields[2]), keys.indices.contains(position) else { continue }
      let type = fields[3].trimmingCharacters(in: CharacterSet(charactersIn: "()"))
      fingerprints[keys[position].0, default: []].append("\(type) \(fields[1])")
    }
    return fingerprints
  }
}
