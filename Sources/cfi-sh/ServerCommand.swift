// `cfi-sh server`: the server's own set-up.

import ArgumentParser
import Foundation
import Runtime

struct ServerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "server",
    abstract: "Set up the cfi server.",
    subcommands: [Initialize.self])

  struct Initialize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "init",
      abstract: "Create the server's ssh key if needed, and announce it over mDNS.",
      discussion: """
        The key (ed25519: it fits an mDNS TXT record, an RSA key does not) is what clients put
        in root's authorized_keys when they run 'cfi-sh client enroll'. It is announced as a
        _cfi-server._tcp service with TXT key=<public key> and fp=<SHA256 fingerprint>, through
        an avahi service file (so the announcement survives restarts). Running it again keeps
        the existing key and rewrites the announcement.
        """)

    @Option(help: ArgumentHelp("Where the private key goes.", valueName: "file"))
    var key: String = SSHConfiguration.defaultIdentityFile

    @Option(help: ArgumentHelp("avahi's service directory (default /etc/avahi/services, or CFI_AVAHI_SERVICES).", valueName: "dir"))
    var servicesDir: String?

    @Flag(help: "Create the key, but do not announce it.")
    var noAnnounce = false

    func run() async throws {
      let manager = FileManager.default
      if !manager.fileExists(atPath: key) {
        try manager.createDirectory(
          atPath: (key as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
          attributes: [.posixPermissions: 0o755])
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let hostname = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cfi-server@\(hostname)", "-f", key])
        print("created \(key)")
      } else {
        print("keeping \(key)")
      }
      let fingerprintLine = try runTool("/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", key + ".pub"])
      let fingerprint = String(fingerprintLine.split(separator: " ").dropFirst().first ?? "?")
      let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
      print("public key: \(key).pub")
      print("fingerprint: \(fingerprint)")
      guard !noAnnounce else { return }
      let directory = CFISh.setting(servicesDir, "CFI_AVAHI_SERVICES") ?? "/etc/avahi/services"
      let file = try announce(publicKey: publicKey, fingerprint: fingerprint, in: directory)
      print("announced as _cfi-server._tcp: \(file)")
      if directory == "/etc/avahi/services" {
        // avahi-daemon rereads its service files on inotify, and on -r where that is off.
        _ = try? runTool("/usr/sbin/avahi-daemon", ["-r"])
      }
    }

    /// Writes the avahi service file announcing the key (temp file + rename: avahi reads a
    /// file as soon as it appears, so it must never see half of one).
    private func announce(publicKey: String, fingerprint: String, in directory: String) throws -> String {
      func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
          .replacingOccurrences(of: ">", with: "&gt;")
      }
      guard ("key=" + publicKey).utf8.count <= 255 else {
        throw ValidationError("the public key is too long for an mDNS TXT string (255 bytes); use an ed25519 key")
      }
      let xml = """
        <?xml version="1.0" standalone='no'?>
        <!DOCTYPE service-group SYSTEM "avahi-service.dtd">
        <!-- Written by 'cfi-sh server init': the cfi server's ssh key, for 'cfi-sh client enroll'. -->
        <service-group>
          <name replace-wildcards="yes">cfi server on %h</name>
          <service protocol="ipv4">
            <type>_cfi-server._tcp</type>
            <port>22</port>
            <txt-record>key=\(escaped(publicKey))</txt-record>
            <txt-record>fp=\(escaped(fingerprint))</txt-record>
          </service>
        </service-group>

        """
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      let file = directory + "/cfi-server.service"
      let temporary = directory + "/.cfi-server.service.tmp"
      try xml.write(toFile: temporary, atomically: false, encoding: .utf8)
      try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: temporary)
      guard rename(temporary, file) == 0 else {
        throw ValidationError("cannot write \(file): \(String(cString: strerror(errno)))")
      }
      return file
    }

    @discardableResult
    private func runTool(_ path: String, _ arguments: [String]) throws -> String {
      let result = try runProgram(path, arguments)
      guard result.status == 0 else {
        throw ValidationError("\(path) \(arguments.joined(separator: " ")) failed: \(result.stderr)")
      }
      return result.stdout
    }
  }
}
