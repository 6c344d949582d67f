// `cfi-sh server`: the server's own set-up. What `init` does is Runtime's (`ServerSetup`, in
// Sources/Runtime/Enrollment/, sharing the atomic file writes and service files with the
// client side); this renders its report.

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
        The key (ed25519: it fits an mDNS TXT record, an RSA key does not) is what
        clients put in root's authorized_keys when they run 'cfi-sh client enroll'. It
        is announced as a \(ServiceType.server) service with TXT key=<public key> and
        fp=<SHA256 fingerprint>, through an avahi service file (so the announcement
        survives restarts). Running it again keeps the existing key and rewrites the
        announcement if it changed.
        """)

    @Option(help: ArgumentHelp("Where the private key goes.", valueName: "file"))
    var key: String = SSHConfiguration.defaultIdentityFile

    @Option(help: ArgumentHelp("avahi's service directory (default /etc/avahi/services, or CFI_AVAHI_SERVICES).", valueName: "dir"))
    var servicesDir: String?

    @Flag(help: "Create the key, but do not announce it.")
    var noAnnounce = false

    func run() async throws {
      let directory = CFISh.setting(servicesDir, "CFI_AVAHI_SERVICES") ?? AvahiServiceFile.defaultDirectory
      let report: ServerSetup.Report
      do { report = try await ServerSetup(keyFile: key, servicesDirectory: noAnnounce ? nil : directory).run() } catch {
        FileHandle.standardError.write(Data("cfi-sh server init: \(error)\n".utf8))
        throw ExitCode(1)
      }
      print(report.created ? "created \(report.keyFile)" : "keeping \(report.keyFile)")
      print("public key: \(report.publicKeyFile)")
      print("fingerprint: \(report.fingerprint)")
      if let announcement = report.announcement {
        print("announced as \(ServiceType.server): \(announcement.file)")
      }
      if let failure = report.announcementFailure {
        FileHandle.standardError.write(Data("cfi-sh server init: the key is ready, but not announced: \(failure)\n".utf8))
        throw ExitCode(1)
      }
    }
  }
}
