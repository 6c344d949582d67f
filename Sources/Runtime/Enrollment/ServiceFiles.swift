// Enrollment, avahi service files: how a client announces itself (`ServiceType.client`, TXT
// `group=NAME`) and how the server announces its key (`ServiceType.server`, TXT `key=…`,
// `fp=…`), as static files in avahi's service directory (so the announcements survive
// restarts), and asking avahi-daemon to reread them. Format: avahi.service(5).

import Foundation

/// One avahi service file announcing one service.
public struct AvahiServiceFile: Hashable, Sendable {
  /// Where avahi-daemon reads service files (compiled into it: no option moves it).
  public static let defaultDirectory = "/etc/avahi/services"
  /// The file names of the client's and the server's announcements.
  public static let clientFileName = "cfi.service"
  public static let serverFileName = "cfi-server.service"
  /// The longest TXT string avahi accepts (RFC 6763 §6.1; avahi refuses the record beyond it).
  public static let maximumTXTLength = 255

  /// The file's name in the service directory.
  public var fileName: String
  /// Who wrote the file and how it goes away, as an XML comment for whoever finds it.
  public var origin: String
  /// The instance name; `%h` is the host name (avahi's wildcard).
  public var instanceName: String
  public var type: String
  public var port: Int
  /// `key=value` strings.
  public var txt: [String]

  /// This machine as a cfi client: `ServiceType.client` on sshd's `port`, with its group.
  public static func client(group: GroupName?, port: Int) -> AvahiServiceFile {
    AvahiServiceFile(
      fileName: clientFileName,
      origin: "Written by 'cfi-sh client enroll': this machine as a cfi client. 'cfi-sh client leave' removes it.",
      instanceName: "%h", type: ServiceType.client, port: port, txt: group.map { ["group=\($0)"] } ?? [])
  }

  /// The cfi server's key, for `cfi-sh client enroll`: the public key line as in the `.pub`
  /// file (with its comment) and its fingerprint.
  public static func server(publicKey: String, fingerprint: KeyFingerprint) -> AvahiServiceFile {
    AvahiServiceFile(
      fileName: serverFileName,
      origin: "Written by 'cfi-sh server init': the cfi server's ssh key, for 'cfi-sh client enroll'.",
      instanceName: "cfi server on %h", type: ServiceType.server, port: 22,
      txt: ["key=\(publicKey)", "fp=\(fingerprint)"])
  }

  /// The file's text.
  public var text: String {
    let records = txt.map { "\n    <txt-record>\(Self.escaped($0))</txt-record>" }.joined()
    return """
      <?xml version="1.0" standalone='no'?>
      <!DOCTYPE service-group SYSTEM "avahi-service.dtd">
      <!-- \(origin) -->
      <service-group>
        <name replace-wildcards="yes">\(Self.escaped(instanceName))</name>
        <service protocol="ipv4">
          <type>\(type)</type>
          <port>\(port)</port>\(records)
        </service>
      </service-group>

      """
  }

  private static func escaped(_ text: String) -> String {
    text.replacingScalars(["&": "&amp;", "<": "&lt;", ">": "&gt;"])
  }

  /// Writes the file into `directory` (created with mode 0755 when missing) unless it already
  /// holds this text; whether it wrote. Refuses TXT strings avahi would refuse, rather than
  /// writing a file that announces nothing.
  public func publish(in directory: String) throws(EnrollmentError) -> Bool {
    if let long = txt.first(where: { $0.utf8.count > Self.maximumTXTLength }) {
      throw EnrollmentError(
        "the TXT string '\(displayable(long.prefix { $0 != "=" }))=…' is \(long.utf8.count) bytes, more than the \(Self.maximumTXTLength) an mDNS TXT string holds")
    }
    return try AtomicFile.update(
      Array(text.utf8), at: directory + "/" + fileName, directoryMode: 0o755, newFileMode: 0o644)
  }

  /// What a client service file (ours or one like it) announces: its port and `group=` value;
  /// nil when it announces no `ServiceType.client`.
  public static func announcedClient(in text: String) -> (port: Int?, group: String?)? {
    func element(_ name: String) -> String? {
      guard let open = text.range(of: "<\(name)>"),
        let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex)
      else { return nil }
      return String(text[open.upperBound..<close.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    guard element("type") == ServiceType.client else { return nil }
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
}

/// What asking avahi-daemon to reread its service files did.
public enum AvahiReload: Hashable, Sendable {
  /// The files are not in avahi's directory (tests, odd set-ups): nothing to reload.
  case notAvahisDirectory(String)
  /// No avahi-daemon on this machine: nothing announces the file.
  case notInstalled
  case reloaded
  /// `avahi-daemon -r` failed (what it said, or its status); it reads the files when it starts.
  case failed(String)
  /// It could not be started at all.
  case cannotRun(program: String, error: String)

  /// Runs `avahi-daemon -r` when `directory` is the one avahi-daemon reads.
  public static func reload(for directory: String) async -> AvahiReload {
    guard directory == AvahiServiceFile.defaultDirectory else { return .notAvahisDirectory(directory) }
    guard let daemon = LocalProgram.find("avahi-daemon") else { return .notInstalled }
    do {
      let result = try await daemon.run(["-r"])
      if result.succeeded { return .reloaded }
      return .failed(result.message.isEmpty ? "status \(result.status)" : result.message)
    } catch {
      return .cannotRun(program: daemon.path, error: "\(error)")
    }
  }
}
