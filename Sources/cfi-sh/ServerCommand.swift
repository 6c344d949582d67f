// `cfi-sh server`: the server's own set-up. What `init` does is Runtime's (`ServerSetup`, in
// Sources/Runtime/Enrollment/, sharing the atomic file writes and service files with the
// client side); this renders its report. `bootstrap-script` prints Runtime's
// `ClientBootstrap` for the server's key.

import ArgumentParser
import Foundation
import Runtime

struct ServerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "server",
    abstract: "Set up the cfi server.",
    subcommands: [Initialize.self, BootstrapScript.self])

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

  struct BootstrapScript: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "bootstrap-script",
      abstract: "Print a shell script that makes a freshly installed machine a cfi client.",
      discussion: """
        The script (POSIX sh, run as root, idempotent) is for mass installation:
        a preseed late_command, a cloud-init runcmd, or by hand. It carries this
        server's public key (/etc/cfi/id_ed25519.pub, made by 'cfi-sh server
        init'; --identity names another key) and its fingerprint, so the client
        trusts this server only, whatever announces itself on the network.

        With --deb-url, it downloads cfi-sh's .deb from that URL (curl or wget),
        checks it against --deb-sha256 when given (without it, over plain http,
        a warning: anyone on the path could replace the package), installs it
        with what it depends on (apt-get install, which waits up to 10 minutes
        for the dpkg lock) and enrolls the machine with --group and
        --server-fingerprint: at once when avahi-daemon runs (a live machine),
        else at each boot through \(ClientBootstrap.enrollUnit), which it
        enables (its options go in \(ClientBootstrap.defaultsFile) as
        ENROLL_OPTIONS); the unit tries again until a server answers.

        Without --deb-url, no cfi-sh is installed: the script writes what
        'cfi-sh client enroll' would, \(AvahiServiceFile.defaultDirectory)/\(AvahiServiceFile.clientFileName) (\(ServiceType.client)
        with TXT group=NAME), the server's key in root's authorized_keys (one
        line with the comment cfi-sh-server:FINGERPRINT) and the pin
        \(ServerPin.defaultPath), so the machine announces itself with its group
        when avahi-daemon starts. It needs avahi-daemon, openssh-server and rsync.

        EXAMPLES
          cfi-sh server bootstrap-script --group lab > /var/www/html/late.sh
          cfi-sh server bootstrap-script --group lab \\
            --deb-url http://SERVER/cfi-sh_0.1.0_amd64.deb \\
            --deb-sha256 "$(sha256sum < cfi-sh_0.1.0_amd64.deb | cut -d' ' -f1)"
          preseed (the target needs avahi-daemon, openssh-server and rsync):
            d-i preseed/late_command string \\
              wget -qO /target/root/late.sh http://SERVER/late.sh; \\
              in-target sh /root/late.sh
          cloud-init:
            runcmd:
              - sh -c 'curl -fsS http://SERVER/late.sh | sh'

        EXIT STATUS
          0    the script was printed
          1    no usable server key (run 'cfi-sh server init' first)
          64   command-line usage error
        """)

    @OptionGroup var announcement: ClientCommand.Announcement

    @Option(help: ArgumentHelp("Where the machine downloads cfi-sh's .deb (http or https).", valueName: "url"))
    var debURL: String?

    @Option(help: ArgumentHelp("The .deb's SHA-256 (sha256sum's 64 hex digits): the script installs no other file.", valueName: "sum"))
    var debSha256: String?

    @Option(help: ArgumentHelp("The server's ssh key, whose .pub goes in the script (default \(SSHConfiguration.defaultIdentityFile), or CFI_IDENTITY).", valueName: "file"))
    var identity: String?

    func validate() throws {
      if let debURL {
        do { _ = try ClientBootstrap.checkPackageURL(debURL) } catch { throw ValidationError("--deb-url: \(error)") }
      }
      if let debSha256 {
        guard debURL != nil else { throw ValidationError("--deb-sha256 checks the .deb of --deb-url, which is missing") }
        do { _ = try ClientBootstrap.checkPackageSHA256(debSha256) } catch { throw ValidationError("--deb-sha256: \(error)") }
      }
    }

    func run() async throws {
      let keyFile = CFISh.setting(identity, "CFI_IDENTITY") ?? SSHConfiguration.defaultIdentityFile
      let publicKey: (line: String, key: ServerKey, fingerprint: KeyFingerprint)
      do {
        publicKey = try await ServerSetup.publicKey(keyFile + ".pub", missing: ": run 'cfi-sh server init' first")
      } catch {
        FileHandle.standardError.write(Data("cfi-sh server bootstrap-script: \(error)\n".utf8))
        throw ExitCode(1)
      }
      let bootstrap = ClientBootstrap(
        key: publicKey.key, fingerprint: publicKey.fingerprint, group: announcement.group, port: announcement.port, packageURL: debURL,
        packageSHA256: try debSha256.map(ClientBootstrap.checkPackageSHA256), generator: "cfi-sh \(CFISh.version)")
      if let debURL, debSha256 == nil, debURL.lowercased().hasPrefix("http://") {
        FileHandle.standardError.write(
          Data("cfi-sh server bootstrap-script: warning: the .deb comes over plain http and is not checked: give --deb-sha256\n".utf8))
      }
      print(bootstrap.script, terminator: "")
    }
  }
}
