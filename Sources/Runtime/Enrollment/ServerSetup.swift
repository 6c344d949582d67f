// Enrollment, the server's side behind `cfi-sh server init`: its ed25519 key pair (made with
// ssh-keygen when missing) and the avahi service file that announces the public key to clients.

import Foundation

/// Sets up the server: the key clients install, and its announcement.
public struct ServerSetup: Sendable {
  /// The private key; the public key is next to it, with `.pub`.
  public var keyFile: String
  /// avahi's service directory; nil: do not announce.
  public var servicesDirectory: String?
  public var sshKeygen: LocalProgram

  public init(keyFile: String, servicesDirectory: String?, sshKeygen: LocalProgram = .sshKeygen) {
    self.keyFile = keyFile
    self.servicesDirectory = servicesDirectory
    self.sshKeygen = sshKeygen
  }

  /// What `run` did.
  public struct Report: Hashable, Sendable {
    public var keyFile: String
    public var publicKeyFile: String
    /// Whether the key pair was made now (else the existing one was kept).
    public var created: Bool
    public var fingerprint: KeyFingerprint
    /// The service file announcing the key; nil when not announced.
    public var announcement: Announcement?
    /// Why the key could not be announced (the key itself is made and reported all the same).
    public var announcementFailure: EnrollmentError?

    public struct Announcement: Hashable, Sendable {
      public var file: String
      /// What asking avahi-daemon to reread it did.
      public var reload: AvahiReload
    }
  }

  /// Makes the key pair unless it exists, checks the public key is one clients accept, and
  /// announces it (the file is rewritten only when it changed; avahi is asked to reread it
  /// either way, since a restarted daemon is not the only reader that may have missed it).
  public func run() async throws(EnrollmentError) -> Report {
    let publicKeyFile = keyFile + ".pub"
    let created = !FileManager.default.fileExists(atPath: keyFile)
    if created {
      try AtomicFile.createDirectory((keyFile as NSString).deletingLastPathComponent, mode: 0o755)
      try await runKeygen(["-q", "-t", "ed25519", "-N", "", "-C", "cfi-server@\(ServerIdentity.hostName ?? "localhost")", "-f", keyFile])
    }
    let (publicKey, _, fingerprint) = try await Self.publicKey(publicKeyFile, sshKeygen: sshKeygen)
    var report = Report(
      keyFile: keyFile, publicKeyFile: publicKeyFile, created: created, fingerprint: fingerprint, announcement: nil,
      announcementFailure: nil)
    if let servicesDirectory {
      let file = AvahiServiceFile.server(publicKey: publicKey, fingerprint: fingerprint)
      do throws(EnrollmentError) {
        _ = try file.publish(in: servicesDirectory)
        let reload = await AvahiReload.reload(for: servicesDirectory)
        report.announcement = Report.Announcement(file: servicesDirectory + "/" + file.fileName, reload: reload)
      } catch {
        report.announcementFailure = error
      }
    }
    return report
  }

  /// The server's public key file read and checked: its line (with the comment), the key and
  /// its fingerprint. Throws when it is missing (`missing` ends the message), unreadable, or
  /// not a key clients accept.
  public static func publicKey(
    _ publicKeyFile: String, missing: String = "", sshKeygen: LocalProgram = .sshKeygen
  ) async throws(EnrollmentError) -> (line: String, key: ServerKey, fingerprint: KeyFingerprint) {
    guard FileManager.default.fileExists(atPath: publicKeyFile) else {
      throw EnrollmentError("there is no public key \(publicKeyFile)\(missing)")
    }
    guard let data = FileManager.default.contents(atPath: publicKeyFile) else {
      throw EnrollmentError("cannot read the public key \(publicKeyFile)")
    }
    let line = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    let key: ServerKey
    do { key = try ServerKey.parse(line) } catch {
      throw EnrollmentError("the public key \(publicKeyFile) \(error.description); clients accept only an ed25519 key (it fits an mDNS TXT record)")
    }
    return (line, key, try await key.fingerprint(sshKeygen: sshKeygen))
  }

  private func runKeygen(_ arguments: [String]) async throws(EnrollmentError) {
    let result: ProgramResult
    do { result = try await sshKeygen.run(arguments) } catch { throw EnrollmentError("cannot run \(sshKeygen): \(error)") }
    guard result.succeeded else {
      throw EnrollmentError("\(sshKeygen) \(arguments.joined(separator: " ")) failed: \(result.message)")
    }
  }
}
